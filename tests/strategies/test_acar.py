"""ACAR: σ from extracted answers, escalation upward only under the task's budget, the vote, its records."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.cli import main
from agentroute.errors import ConfigError
from agentroute.strategies import ACAR, extract, family_of, run_strategy, sigma
from agentroute.strategies.acar import ESCALATE, offline_scores, select_probes
from tests.strategies.strat_helpers import mc_table

ACAR2 = ACAR(probes=["cheap-b", "cheap-c"], ladder=["strong"])


def test_answers_are_extracted_per_task_family() -> None:
    mc = "Which?\nA) one\nB) two\nC) three\nAnswer:"
    assert family_of(mc) == "letter"
    assert [extract(r, "letter", mc) for r in ("B", "(C)", "The answer is A.", "B) two", "D", "I do")] == \
        ["B", "C", "A", "B", None, None]
    assert family_of("How many apples?", "gsm8k") == "number"
    assert extract("so 1,200.0 in total", "number") == extract("1200", "number") == "1200"
    assert family_of("Pick one:\n1) red\n2) blue") == "option" and extract("Option 2", "option") == "2"
    assert family_of("Write a function.", "mbpp") == "text"
    assert extract("  Hello,  World! ", "text") == extract("hello world", "text")


@given(st.lists(st.sampled_from(["A", "B", "C", None]), min_size=2, max_size=8))
def test_sigma_is_distinct_minus_one_over_n_minus_one(answers: list[str | None]) -> None:
    s = sigma(answers)
    distinct = len({a for a in answers if a is not None}) + answers.count(None)
    assert s == (distinct - 1) / (len(answers) - 1)
    assert 0.0 <= s <= 1.0
    assert (s == 0.0) == (distinct == 1)


def test_fewer_than_two_probes_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"at least 2 probes \(N >= 2\), got 1"):
        ACAR(probes=["cheap-a"], ladder=["strong"])
    with pytest.raises(ConfigError, match="thresholds"):
        ACAR(probes=["cheap-a", "cheap-b"], ladder=["strong"], thresholds=(0.5, 0.2))


def test_agreement_answers_alone_and_disagreement_escalates_with_a_full_record() -> None:
    t = mc_table(8)
    rep = run_strategy(ACAR2, t)
    for i, o in enumerate(rep.outcomes):
        hard = i % 2 == 1
        assert o.evidence["escalation"] == (["strong"] if hard else [])
        assert o.evidence["sigma"] == (1.0 if hard else 0.0)
        assert o.quality == 1.0  # the strong answer wins a 1-1 split; agreeing probes are right here
        assert o.calls == (3 if hard else 2)
    esc = [r for r in rep.records if r.point == ESCALATE]
    assert len(esc) == 8
    ev = esc[1].evidence
    assert ev["probes"] == ["cheap-b", "cheap-c"] and len(ev["answers"]) == 2 and ev["escalation"] == ["strong"]
    assert esc[1].chosen == "+strong" and esc[0].chosen == "answer"
    assert rep.summary()["escalation_avoided"] == 0.5


def test_the_vote_lets_two_agreeing_probes_outvote_one_strong_model() -> None:
    acar = ACAR(probes=["a", "b", "c"], ladder=["s"], trust=1.5)
    assert acar.final(["A", "A", "B", "B"], 1) == 3  # strong + one probe (2.5) beat one probe (1)
    assert acar.final(["A", "A", "C", "B"], 1) == 1  # two agreeing probes (2) beat the strong model (1.5)
    assert acar.final(["A", "B"], 0) == 1  # a tie goes to the stronger member


def test_the_kernel_run_matches_the_offline_replay_of_the_same_rule() -> None:
    t = mc_table(12, seed=3)
    for acar in (ACAR2, ACAR(probes=["cheap-a", "cheap-b", "cheap-c"], ladder=["strong"])):
        rep = run_strategy(acar, t)
        s = rep.summary()
        q, c, avoided = offline_scores(acar, t)
        assert s["quality"] == pytest.approx(q) and s["cost_usd"] == pytest.approx(c)
        assert s["escalation_avoided"] == pytest.approx(avoided)


def test_select_probes_picks_the_best_scoring_probe_set_on_the_training_table() -> None:
    t = mc_table(16)
    pool = ["cheap-a", "cheap-b", "cheap-c"]
    pairs = [["cheap-a", "cheap-b"], ["cheap-a", "cheap-c"], ["cheap-b", "cheap-c"]]
    for lam in (0.0, 1e6):
        best = select_probes(t, pool, ["strong"], n=2, cost_weight=lam)
        scores = {tuple(p): offline_scores(ACAR(probes=p, ladder=["strong"]), t) for p in pairs}
        top = max(scores.values(), key=lambda s: s[0] - lam * s[1])
        q, c, _ = scores[tuple(best.probes)]
        assert q - lam * c == pytest.approx(top[0] - lam * top[1])
    with pytest.raises(ConfigError, match="N >= 2"):
        select_probes(t, pool, ["strong"], n=1)


@settings(max_examples=25)
@given(budget=st.decimals(min_value=Decimal("0.00005"), max_value=Decimal("0.008"), places=5))
def test_under_any_budget_acar_never_spends_past_it_and_says_when_it_was_cut(budget: Decimal) -> None:
    t = mc_table(4)
    rep = run_strategy(ACAR2, t, budget_usd=budget)
    assert rep.overspent == 0
    for o in rep.outcomes:
        assert o.cost_usd is not None and o.cost_usd <= budget
        if o.truncated:
            assert o.refused and all("budget:usd" in r for r in o.refused)
        wanted, got = o.evidence.get("wanted", []), o.evidence.get("escalation", [])
        assert got == wanted[: len(got)]  # upward only, never more than σ asked for


def test_acar_runs_as_an_agent_of_a_graph_under_the_task_budget() -> None:
    t = mc_table(4)
    rec = ar.providers.Recorded(t)
    tiers = rec.tiers()
    g = ar.AgentGraph("acar")
    g.add_agent("answer", ACAR2.agent(tiers, rec))
    g.start("answer")
    app = g.compile(policy=ar.policies.Cheapest(), provider=rec)
    res = app.run({"question": t.texts[1]}, budget=ar.Budget(usd="0.02"))
    assert res.completed and res.state["answer"] == t.responses[1, 3]
    assert res.state["answer_acar"]["escalation"] == ["strong"]
    assert res.spent.usd is not None and Decimal(0) < res.spent.usd <= Decimal("0.02")
    assert any(d.point == ESCALATE for d in res.decisions)


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(main, args)


def test_eval_strategy_writes_metrics_and_the_frontier(tmp_path: Path) -> None:
    t = mc_table(8)
    table = tmp_path / "t.parquet"
    t.write(table)
    out = tmp_path / "ev"
    train = tmp_path / "train.parquet"
    mc_table(12, seed=1).write(train)
    r = _cli(["eval", "--table", str(table), "--train", str(train), "--strategy", "acar", "acar-3", "fanout",
              "llm-router", "cache", "strong", "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["strategies"]) == {"acar", "acar-3", "fanout", "llm-router", "cache", "strong"}
    assert m["fitted_on"] == str(train)
    assert m["strategies"]["acar"]["config"]["probes"] and "cache_hit" in m["strategies"]["cache"]
    for s in m["strategies"].values():
        assert 0.0 <= s["quality"] <= 1.0 and s["cost_usd"] > 0
    assert m["strategies"]["strong"]["quality"] == pytest.approx(1.0)
    assert len(m["zero_router"]["hull"]) >= 1 and set(m["single_options"]) == set(t.options)
    assert (out / "frontier.png").stat().st_size > 1000
    rows = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert any(x["point"] == ESCALATE for x in rows)


def test_eval_strategy_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    t = mc_table(4)
    with_resp = tmp_path / "t.parquet"
    t.write(with_resp)
    t.responses = None
    bare = tmp_path / "bare.parquet"
    t.write(bare)
    out = str(tmp_path / "ev")
    for args, msg in (
        (["--table", str(bare), "--strategy", "acar"], "needs recorded responses"),
        (["--table", str(with_resp), "--strategy", "nope"], "unknown strategy 'nope'"),
        (["--table", str(with_resp), "--strategy", "acar-1"], "at least 2 probes"),
        (["--table", str(with_resp), "--strategy", "acar", "--budget", "-1"], "must be > 0"),
    ):
        res = subprocess.run([sys.executable, "-c", "from agentroute.cli import run; run()", "eval", *args, "--out",
                              out], capture_output=True, text=True, cwd=Path(__file__).parents[2])
        assert res.returncode == 2, res.stderr
        assert msg in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
