"""The flywheel over a real store: shadows recorded and never acted on; eval/fit/promote --logged from the store and
from its export; bad logs refused with one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentroute import Budget, policies, providers
from agentroute.cli import main
from agentroute.examples import rules_path, support_graph, support_rules, support_tasks
from agentroute.offpolicy import promote, read_logged
from agentroute.policies import load_policy
from agentroute.policies.explore import EpsilonGreedy
from agentroute.store import get_engine
from agentroute.store.queries import decision_records
from agentroute.telemetry import configure_tracing

BUDGET = Budget(usd="0.01")


def _log(url: str, policy, n: int, seed: int, shadow=()) -> list:
    tracing = configure_tracing(exporters="none", store_url=url, capture_content=True)
    app = support_graph().compile(policy=policy, provider=providers.Simulated(seed=0), hooks=tracing.hooks,
                                  shadow=shadow, capture_content=True)
    tasks = support_tasks(n, seed=seed)
    results = [app.run({"question": t["question"]}, budget=BUDGET, category=t["category"]) for t in tasks]
    assert tracing.flush()
    tracing.shutdown()
    return results


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def test_shadows_are_recorded_with_every_decision_and_never_act(store_url):
    shadows = [policies.Cheapest(), policies.Strongest()]
    watched = _log(store_url, EpsilonGreedy(support_rules(), 0.3, seed=1), 12, seed=1, shadow=shadows)
    alone = support_graph().compile(policy=EpsilonGreedy(support_rules(), 0.3, seed=1),
                                    provider=providers.Simulated(seed=0))
    plain = [alone.run({"question": t["question"]}, budget=BUDGET, category=t["category"])
             for t in support_tasks(12, seed=1)]
    assert [[d.chosen for d in r.decisions] for r in watched] == [[d.chosen for d in r.decisions] for r in plain]
    stored = list(decision_records(get_engine(store_url)))
    ran = {(d.task_id, d.index): d for r in watched for d in r.decisions}
    assert len(stored) == len(ran) > 0
    for rec in stored:
        assert rec == ran[(rec.task_id, rec.index)]  # the shadow column round-trips
        if rec.reason.startswith("forced:"):
            continue
        assert set(rec.shadow) == {"cheapest", "strongest"}
        ranks = {c.id: c.rank for c in rec.candidates}
        assert rec.shadow["cheapest"]["chosen"] == min(ranks, key=ranks.__getitem__)
        assert rec.shadow["strongest"]["probabilities"][rec.shadow["strongest"]["chosen"]] == 1.0


def test_eval_fit_promote_from_the_store_and_its_export(store_url, tmp_path: Path):
    _log(store_url, EpsilonGreedy(support_rules(), 0.4, seed=2), 50, seed=2, shadow=[policies.Cheapest()])
    export = tmp_path / "decisions.jsonl"
    code, out = _cli("traces", "export", "--db", store_url, "--out", str(export), "--quiet")
    assert code == 0, out
    assert read_logged(export) == read_logged(store_url)
    parquet = tmp_path / "decisions.parquet"
    code, out = _cli("traces", "export", "--db", store_url, "--format", "parquet", "--out", str(parquet), "--quiet")
    assert code == 0, out
    back = read_logged(parquet)
    assert back == read_logged(store_url) and any(r.shadow for r in back)

    code, out = _cli("eval", "--logged", store_url, "--policy", "cheapest", "--policy", "shadow:cheapest",
                     "--policy", str(rules_path()), "--cost-weight", "100", "--bootstrap", "200",
                     "--out", str(tmp_path / "e1"))
    assert code == 0, out
    m = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert set(m["policies"]) == {"cheapest", "shadow:cheapest", "support"}
    for rec in m["policies"].values():
        for k in ("ips", "snips", "dr"):
            assert set(rec[k]) == {"value", "ci_low", "ci_high"} and rec[k]["ci_low"] <= rec[k]["ci_high"]
        assert 0 < rec["ess"] <= 50
    # the recorded shadow and the policy asked again on the rebuilt observation agree
    assert m["policies"]["shadow:cheapest"]["dr"] == m["policies"]["cheapest"]["dr"]
    code, out = _cli("eval", "--logged", str(export), "--policy", "cheapest", "--cost-weight", "100",
                     "--bootstrap", "200", "--out", str(tmp_path / "e2"))
    assert code == 0, out
    one = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert one["dr"] == m["policies"]["cheapest"]["dr"] and one["ess"] == m["policies"]["cheapest"]["ess"]

    code, out = _cli("fit", "--logged", store_url, "--policy", "q-linear-iw", "--cost-weight", "100",
                     "--out", str(tmp_path / "fitted.json"))
    assert code == 0 and "fitted q-linear-iw on 50 logged tasks" in out, out
    fitted = load_policy(tmp_path / "fitted.json")
    app = support_graph().compile(policy=fitted, provider=providers.Simulated(seed=0))
    assert app.run({"question": "Why was I charged twice?"}, budget=BUDGET).decisions

    code, out = _cli("promote", "--logged", str(export), "--candidate", str(tmp_path / "fitted.json"),
                     "--cost-weight", "100", "--bootstrap", "200")
    verdict = promote(read_logged(export), fitted, cost_weight=100, n_boot=200)
    assert code == (0 if verdict["promote"] else 1), out
    assert "candidate logged:q-linear-iw" in out and "baseline  logged (explore:support)" in out


def test_bad_logs_get_one_line_and_exit_2(store_url, tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = _cli("eval", "--logged", str(empty), "--policy", "cheapest", "--out", str(tmp_path / "x"))
    assert code == 2 and "no decision" in out

    _log(store_url, support_rules(), 6, seed=5)  # deterministic rules: propensity 1 on each choice
    code, out = _cli("eval", "--logged", store_url, "--policy", "cheapest", "--out", str(tmp_path / "x"))
    assert code == 2 and "do not cover" in out and "EpsilonGreedy" in out, out
    code, out = _cli("eval", "--logged", store_url, "--policy", "fixed:gpt-9", "--out", str(tmp_path / "x"))
    assert code == 2 and "gpt-9" in out, out
    code, out = _cli("eval", "--logged", store_url, "--policy", "nonsense", "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown policy 'nonsense'" in out, out
    code, out = _cli("promote", "--logged", store_url, "--candidate", "fixed:gpt-9")
    assert code == 2 and "gpt-9" in out, out

    no_props = tmp_path / "no_props.jsonl"
    rows = [r.to_dict() for r in read_logged(store_url)]
    no_props.write_text("".join(json.dumps({**r, "probabilities": {}}) + "\n" for r in rows))
    code, out = _cli("fit", "--logged", str(no_props), "--policy", "q-linear", "--out", str(tmp_path / "p.json"))
    assert code == 2 and "no propensities" in out, out
    code, out = _cli("eval", "--logged", str(no_props), "--policy", "rules", "--out", str(tmp_path / "x"))
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), out


@pytest.mark.parametrize("args", [["--table", "t.csv", "--logged", "x.jsonl"], []])
def test_eval_needs_one_source(args, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text("query_id,option,quality,cost\n")
    Path("x.jsonl").write_text("")
    code, out = _cli("eval", *args, "--policy", "cheapest", "--out", "d")
    assert code == 2 and "give one of --table" in out
