"""Hostile inputs to the parsers agentroute owns: each attack of issue 13 item 9, reproduced and refused.

Each test builds the attack as a user would meet it (a file on disk, a CLI call) and checks that it is refused
with a documented error naming the file, the line (where YAML gives one) and the field, or that it now runs in
bounded time. No wall-clock assertions: a regression shows up as the pytest timeout, not as a flaky threshold.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import agentroute as ar
from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.data.convert import convert_routerbench, parse_prompt
from agentroute.envs.scenario import load_scenario, resolve_graph
from agentroute.errors import ConfigError, DataError
from agentroute.policies.rules import RulePolicy
from agentroute.routing import Candidate, Observation, TaskInfo

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ scenarios: module:attr


def _scenario(tmp_path: Path, graph: str) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"env: agentroute/GraphRouting-v0\noptions:\n  reward: boundary\n  graph: {graph!r}\n")
    return f


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("os:abort", "standard library"),
        ("builtins:exit", "standard library"),
        ("subprocess:run", "standard library"),
        ("agentroute.testing:no_network", "not an AgentGraph"),  # a zero-argument callable of no graph
        ("agentroute.graph:AgentGraph", "not an AgentGraph"),  # a class is not a factory
        ("agentroute.examples", "module:attribute"),
        ("..evil:x", "module:attribute"),
        ("agentroute.examples:no_such_graph", "has no attribute"),
        ("no_such_module_xyz:g", "cannot import"),
    ],
)
def test_a_scenario_graph_must_name_an_agent_graph_and_nothing_is_called(
    tmp_path: Path, ref: str, message: str
) -> None:
    f = _scenario(tmp_path, ref)
    with pytest.raises(ConfigError, match=message) as e:
        load_scenario(f)
    assert str(f) in str(e.value) and "line 4" in str(e.value) and "options.graph" in str(e.value)
    assert e.value.name == "graph"


def test_os_abort_in_a_scenario_does_not_kill_agentroute_train(tmp_path: Path) -> None:
    f = _scenario(tmp_path, "os:abort")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "import sys; from agentroute.cli import run; sys.argv = ['agentroute'] + sys.argv[1:]; run()"
    out = subprocess.run(
        [sys.executable, "-c", code, "train", "--scenario", str(f), "--out", str(tmp_path / "p.npz"), "--quiet"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 2, out.stderr  # a usage error, not SIGABRT (-6)
    assert "standard library" in out.stderr and "line 4" in out.stderr


def test_the_graph_option_of_the_env_is_checked_before_anything_is_called() -> None:
    with pytest.raises(ConfigError, match="standard library"):
        resolve_graph("os:abort")
    with pytest.raises(ConfigError, match="not an AgentGraph"):
        resolve_graph("agentroute.testing:no_network")


def test_an_agent_graph_or_an_annotated_factory_resolves(tmp_path: Path) -> None:
    from agentroute.graph import AgentGraph

    g = resolve_graph("agentroute.examples:support_graph")
    assert isinstance(g, AgentGraph)
    sc = load_scenario(REPO / "envs" / "support-graph.yaml")
    assert sc.options["graph"] == "agentroute.examples:support_graph"


# ------------------------------------------------------------------ rules: regex engine, nesting, size


def _obs(text: str) -> Observation:
    cands = (Candidate("small", "model", rank=0), Candidate("large", "model", rank=1))
    status = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())
    return Observation(task=TaskInfo("t", text), kind="model", point="a.model", node="a", step=0, history=(),
                       budget=status, candidates=cands)


def test_a_catastrophic_regex_decides_in_linear_time() -> None:
    pol = RulePolicy([{"name": "evil", "when": {"regex": "^(a+)+$"}, "choose": "large"}],
                     default={"model": "small"})
    for n in (26, 40, 100_000):  # exponential under backtracking: 2**100000 steps would never end
        assert pol.decide(_obs("a" * n + "!")).chosen == "small"
    assert pol.decide(_obs("a" * 100_000)).chosen == "large"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=x)y", r"(?<!x)y", r"\Z"])
def test_a_regex_the_linear_engine_cannot_run_is_refused_at_load_with_its_line(tmp_path: Path, pattern: str) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(f"rules:\n  - name: ok\n    choose: small\n  - name: bad\n    when: {{regex: {json.dumps(pattern)}}}\n"
                 "    choose: large\n")
    with pytest.raises(ConfigError, match="RE2") as e:
        RulePolicy.from_file(f)
    assert "line 4" in str(e.value) and "when.regex" in str(e.value)


def test_deeply_nested_rules_yaml_is_a_config_error_not_a_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested deeper than 32") as e:
        RulePolicy.from_file(f)
    assert str(f) in str(e.value) and "line 1" in str(e.value)
    with pytest.raises(ConfigError, match="nested deeper"):
        RulePolicy.from_yaml("a: " + "{b: " * 3000 + "1" + "}" * 3000)


def test_alias_bombs_and_recursive_aliases_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    with pytest.raises(ConfigError, match="more than 100000 values"):
        RulePolicy.from_yaml(bomb)
    with pytest.raises(ConfigError, match="refers to itself"):
        RulePolicy.from_yaml("rules: &r [*r]")


def test_an_oversized_rule_file_is_refused_with_the_limit_and_how_to_raise_it(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("# " + "x" * (1 << 20) + "\nrules: []\n")
    with pytest.raises(ConfigError, match=r"1048576 bytes.*MAX_FILE_BYTES"):
        RulePolicy.from_file(f)
    import agentroute.policies.rules as rules_mod

    monkeypatch.setattr(rules_mod, "MAX_FILE_BYTES", 2 << 20)
    assert RulePolicy.from_file(f).rules == ()


# ------------------------------------------------------------------ data convert and prompts


def _routerbench_csv(path: Path, prompt: str) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "prompt", "eval_name", "m1", "m1|total_cost", "m1|model_response"])
        w.writerow(["s1", prompt, "e", "1", "0.001", "['ok']"])
        w.writerow(["s2", "['hi']", "e", "0", "0.002", "['no']"])
    return path


def test_a_4mb_list_prompt_is_refused_quickly_instead_of_hanging(tmp_path: Path) -> None:
    # before: ast.literal_eval built ~2M AST nodes (36 s, 2 GB) for this one cell
    f = _routerbench_csv(tmp_path / "rb.csv", "[" + "1," * 2_000_000 + "]")
    with pytest.raises(DataError, match=r"1000000 characters.*MAX_TEXT_CHARS") as e:
        convert_routerbench([f])
    assert "rb.csv" in str(e.value) and "row 1" in str(e.value) and "prompt" in str(e.value)


def test_a_large_but_allowed_list_prompt_parses_in_linear_time() -> None:
    text = parse_prompt("[" + "'a', " * 150_000 + "]")
    assert text == "\n".join(["a"] * 150_000)
    assert parse_prompt("[" + "1+" * 300_000 + "1]").startswith("[1+1")  # not a list of strings: kept as is
    assert parse_prompt("[" + "-" * 400_000 + "1]").startswith("[--")


def test_prompt_escapes_are_those_of_python_repr() -> None:
    values = ["plain", "it's", 'say "hi"', "tab\tnew\nline", "back\\slash", "é ü 汉字 \U0001f600", "\x00\x7f"]
    assert parse_prompt(repr(values)) == "\n".join(values)
    assert parse_prompt(str(["one"])) == "one"
    assert parse_prompt("[]") == ""
    assert parse_prompt("[not python]") == "[not python]"
    assert parse_prompt(float("nan")) == ""


# ------------------------------------------------------------------ budgets


@pytest.mark.parametrize(
    "kw",
    [
        {"usd": 10**5000}, {"usd": "9" * 5000}, {"tokens": 10**400}, {"seconds": 10**400}, {"steps": "1" * 10**6},
        {"usd": "1e999999999999999999999"}, {"tokens": "nan"}, {"usd": [1]},
    ],
)
def test_hostile_budget_values_are_config_errors(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ar.Budget(**kw)  # type: ignore[arg-type]


def test_whole_number_limits_stay_exact() -> None:
    assert ar.Budget(tokens=10**17 + 1).tokens == 10**17 + 1
    assert ar.Budget(steps=Decimal("12")).steps == 12
    assert ar.Budget(tokens="12").tokens == 12
