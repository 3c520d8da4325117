"""Fuzzing budget parsing: any value for any field (Python, strings, YAML) gives a valid Budget or a ConfigError."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from hostile_inputs import scalars, structures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute.budget import Budget
from agentroute.envs.scenario import load_scenario
from agentroute.errors import ConfigError

FUZZ = settings(deadline=None, max_examples=100)
values = st.one_of(
    scalars,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(alphabet="0123456789.eE+-_ nNaIiFf", max_size=30),
    st.sampled_from(["1e999999999999999999999", "1e-999999", "-0", " 12 ", "0x10", "1_000", "9" * 101, "1" * 10**5,
                     "sNaN", "Infinity", "１２"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _check(b: Budget) -> None:
    assert b.usd is None or (isinstance(b.usd, Decimal) and b.usd.is_finite() and b.usd >= 0)
    for v in (b.tokens, b.steps):
        assert v is None or (type(v) is int and v >= 0)
    assert b.seconds is None or (isinstance(b.seconds, float) and 0 <= b.seconds < float("inf"))
    assert Budget(**{k: v for k, v in b.as_dict().items()}) == b  # what a budget prints, it reads back


@FUZZ
@given(field=st.sampled_from(["usd", "tokens", "steps", "seconds"]), value=values)
def test_any_value_for_any_field_is_a_budget_or_a_config_error(field: str, value: object) -> None:
    try:
        b = Budget(**{field: value})
    except ConfigError as e:
        assert f"Budget.{field}" in str(e) and e.name == f"Budget.{field}"
        return
    _check(b)


@FUZZ
@given(usd=values, tokens=values, steps=values, seconds=values)
def test_all_fields_at_once(usd: object, tokens: object, steps: object, seconds: object) -> None:
    try:
        b = Budget(usd=usd, tokens=tokens, steps=steps, seconds=seconds)  # type: ignore[arg-type]
    except ConfigError:
        return
    _check(b)


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budget=structures(["usd", "tokens", "steps", "seconds"]) | st.text(max_size=30))
def test_budgets_written_in_a_scenario_raise_only_config_error(tmp_path: Path, budget: object) -> None:
    try:
        text = yaml.safe_dump({"env": "agentroute/GraphRouting-v0", "options": {"budget": budget}})
    except (yaml.YAMLError, ValueError, OverflowError):
        return
    f = tmp_path / "s.yaml"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        sc = load_scenario(f)
    except ConfigError as e:
        assert str(f) in str(e)
        return
    b = sc.env_kwargs().get("budget")
    assert b is None or isinstance(b, Budget)
    if b is not None:
        _check(b)
