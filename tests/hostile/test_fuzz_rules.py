"""Fuzzing the rule parser: arbitrary text, bytes and structures in, only ConfigError out; decisions never raise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hostile_inputs import structures, yaml_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.errors import ConfigError
from agentroute.policies.rules import RulePolicy, compile_regex
from agentroute.routing import Candidate, Observation, TaskInfo

FUZZ = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])
RULE_KEYS = ["name", "version", "rules", "default", "when", "choose", "kind", "point", "node", "category",
             "keywords", "regex", "min_length", "max_length", "budget_left_below", "budget_left_above",
             "step_at_least", "step_below", "agent", "model", "memory", "line"]
texts = st.text(max_size=60) | st.sampled_from(["a" * 40 + "!", "\ud800invoice\udfff", "", "INVOICE refund"])


def _obs(text: str) -> Observation:
    cands = (Candidate("small", "model", rank=0), Candidate("large", "model", rank=1))
    status = BudgetStatus(limits=Budget(usd=1), spent=Spend(), remaining=Budget(usd="0.5"))
    return Observation(task=TaskInfo("t", text, "billing"), kind="model", point="a.model", node="a", step=1,
                       history=(), budget=status, candidates=cands)


def _decides(policy: RulePolicy, text: str) -> None:
    d = policy.decide(_obs(text))
    assert d.chosen in ("small", "large")


@FUZZ
@given(text=yaml_texts, task=texts)
def test_rule_yaml_text_raises_only_config_error(text: str, task: str) -> None:
    try:
        policy = RulePolicy.from_yaml(text, source="fuzz.yaml")
    except ConfigError as e:
        assert "fuzz.yaml" in str(e)
        return
    _decides(policy, task)


@FUZZ
@given(data=structures(RULE_KEYS), task=texts)
def test_rule_structures_dumped_to_yaml_raise_only_config_error(data: object, task: str) -> None:
    try:
        text = yaml.safe_dump({"rules": data} if isinstance(data, list) else data)
    except (yaml.YAMLError, ValueError, OverflowError):
        return  # not representable as YAML: nothing to feed the parser
    try:
        policy = RulePolicy.from_yaml(text, source="fuzz.yaml")
    except ConfigError:
        return
    _decides(policy, task)


@FUZZ
@given(data=structures(RULE_KEYS), task=texts)
def test_rule_dicts_and_constructor_arguments_raise_only_config_error(data: object, task: str) -> None:
    for build in (lambda: RulePolicy.from_dict(data),  # type: ignore[arg-type]
                  lambda: RulePolicy(data, default=data if isinstance(data, dict) else None)):  # type: ignore[arg-type]
        try:
            policy = build()
        except ConfigError:
            continue
        _decides(policy, task)


_REGEX_PARTS = st.sampled_from(["(", ")", "a", "+", "*", "?", "|", "\\1", "(?=", "(?<!", "\\Z", "\\z", "[", "]",
                                "{2,}", "{1001}", "^", "$", ".", "\\b", "\\d", "(?i)", "(?P<n>", "\\", "\ud800"])


@FUZZ
@given(pattern=st.text(max_size=20) | st.lists(_REGEX_PARTS, max_size=12).map("".join), task=texts)
def test_any_regex_is_compiled_by_re2_or_refused_and_matching_never_raises(pattern: str, task: str) -> None:
    try:
        compile_regex(pattern)
    except ValueError:
        with pytest.raises(ConfigError, match="regex"):
            RulePolicy([{"when": {"regex": pattern}, "choose": "large"}])
        return
    policy = RulePolicy([{"name": "r", "when": {"regex": pattern}, "choose": "large"}], default={"model": "small"})
    _decides(policy, task)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_rule_file_bytes_raise_only_config_error(tmp_path: Path, raw: bytes) -> None:
    f = tmp_path / "rules.yaml"
    f.write_bytes(raw)
    try:
        RulePolicy.from_file(f)
    except ConfigError as e:
        assert str(f) in str(e)
