"""``agentroute traces list|show|export|stats`` on a store filled by real runs, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from agentroute import Budget, policies, providers
from agentroute.cli import main
from agentroute.examples import support_graph, support_tasks
from agentroute.routing import DecisionRecord
from agentroute.store.engine import forget, get_engine
from agentroute.telemetry import configure_tracing

BUDGET = Budget(usd="0.004", tokens=3000, steps=4)


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[str, dict]:
    """A SQLite store with 8 tasks under two policies (one of them truncated by a one-step budget)."""
    db = tmp_path_factory.mktemp("cli") / "traces.db"
    url = f"sqlite:///{db}"
    tracing = configure_tracing(exporters="none", store_url=url)
    results = {}
    graph = support_graph()
    for policy in (policies.Cheapest(), policies.Strongest()):
        app = graph.compile(policy=policy, provider=providers.Simulated(seed=0), hooks=tracing.hooks)
        qs = [{"question": t["question"]} for t in support_tasks(4, seed=2)]
        results[policy.name] = [app.run(q, budget=BUDGET) for q in qs[:3]]
        results[policy.name].append(app.run(qs[3], budget=Budget(usd="0.004", steps=1)))
    tracing.flush()
    tracing.shutdown()
    return str(db), results


def run(*args: str):
    return CliRunner().invoke(main, ["traces", *args])


def test_list_shows_recent_tasks(filled):
    db, results = filled
    r = run("list", "--db", db, "-n", "50")
    assert r.exit_code == 0, r.output
    for res in results["cheapest"] + results["strongest"]:
        assert res.task_id[:12] in r.output
    rows = [json.loads(line) for line in run("list", "--db", db, "--json", "--policy", "strongest").output.splitlines()]
    assert len(rows) == 4 and {x["policy"] for x in rows} == {"strongest"}
    assert sorted(x["task_id"] for x in rows) == sorted(x.task_id for x in results["strongest"])
    trunc = [json.loads(x) for x in run("list", "--db", db, "--json", "--status", "truncated").output.splitlines()]
    assert len(trunc) == 2 and all(x["reason"].startswith("budget") for x in trunc)


def test_show_renders_the_tree_with_candidates_and_budget_left(filled):
    db, results = filled
    res = results["strongest"][0]
    r = run("show", res.task_id[:10], "--db", db)  # a unique prefix is enough
    assert r.exit_code == 0, r.output
    out = r.output
    assert res.task_id in out and "policy strongest" in out and "step 0" in out and "left:" in out
    assert "route model" in out and "◀ chosen" in out and "chat openai/" in out
    d = res.decisions[0]
    assert f"→ {d.chosen}" in out
    doc = json.loads(run("show", res.task_id, "--db", db, "--json").output)
    assert doc["task"]["task_id"] == res.task_id and len(doc["decisions"]) == len(res.decisions)
    assert [c["tier"] for c in doc["calls"]] == [c.tier for c in res.calls]


def test_export_jsonl_and_parquet_one_row_per_decision(filled, tmp_path):
    db, results = filled
    all_results = results["cheapest"] + results["strongest"]
    n = sum(len(r.decisions) for r in all_results)
    out = tmp_path / "d.jsonl"
    r = run("export", "--db", db, "--format", "jsonl", "--out", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == n
    by_task = {res.task_id: res for res in all_results}
    for row in rows:
        rec = DecisionRecord.from_dict(row)
        d = by_task[rec.task_id].decisions[rec.index]
        assert rec == d  # an export row reads back as the very decision the run recorded
        assert row["propensity"] == d.propensity and row["candidates"][0]["id"] == d.candidates[0].id
        assert row["task"]["status"] in ("completed", "truncated") and row["task"]["graph"] == "support"
        assert row["task"]["text"] is None  # content was not captured
    pq = pytest.importorskip("pyarrow.parquet")
    pout = tmp_path / "d.parquet"
    assert run("export", "--db", db, "--format", "parquet", "--out", str(pout), "--policy", "cheapest").exit_code == 0
    table = pq.read_table(pout)
    assert table.num_rows == sum(len(r.decisions) for r in results["cheapest"])
    assert set(table.column("policy").to_pylist()) == {"cheapest"}
    probs = [json.loads(p) for p in table.column("probabilities").to_pylist()]
    assert all(abs(sum(p.values()) - 1.0) < 1e-9 for p in probs)


def test_stats_per_policy(filled):
    db, results = filled
    r = run("stats", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    groups = {g["policy"]: g for g in map(json.loads, r.output.splitlines())}
    for name, res in results.items():
        g = groups[name]
        assert g["tasks"] == 4 and g["truncated"] == sum(x.truncated for x in res)
        assert Decimal(g["spend_usd"]) == sum((x.spent.usd for x in res), Decimal(0))
        assert g["exhaustion_rate"] == pytest.approx(sum(x.reason.startswith("budget") for x in res) / 4)
        model = [d for x in res for d in x.decisions if d.kind == "model"]
        for tier, share in g["tier_mix"].items():
            assert share == pytest.approx(sum(d.chosen == tier for d in model) / len(model))
    assert "tier mix" in run("stats", "--db", db).output


def _one_line_exit_2(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output
    return lines[0]


def test_bad_input_gives_one_line_and_exit_2(filled, tmp_path, monkeypatch):
    db, _ = filled
    assert "no task 'nope'" in _one_line_exit_2(run("show", "nope", "--db", db))
    assert "no trace database" in _one_line_exit_2(run("list", "--db", str(tmp_path / "missing.db")))
    monkeypatch.setenv("AGENTROUTE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert "cannot reach the database" in _one_line_exit_2(run("stats"))
    empty = tmp_path / "empty.db"
    get_engine(str(empty)).connect().close()
    assert "no agentroute traces" in _one_line_exit_2(run("list", "--db", str(empty)))


def test_an_older_schema_is_refused_with_what_to_do(filled, tmp_path):
    import shutil

    db, _ = filled
    old = tmp_path / "old.db"
    shutil.copy(db, old)
    with get_engine(str(old)).begin() as conn:
        conn.execute(text("update agentroute_schema set version = 0"))
    forget(str(old))
    line = _one_line_exit_2(run("list", "--db", str(old)))
    assert "older agentroute schema (version 0" in line and f"agentroute store upgrade --db 'sqlite:///{old}'" in line


@pytest.mark.slow
def test_the_installed_command(filled):
    db, results = filled
    exe = Path(sys.executable).with_name("agentroute")
    proc = subprocess.run(
        [str(exe), "traces", "show", results["cheapest"][0].task_id, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "step 0" in proc.stdout
    bad = subprocess.run([str(exe), "traces", "show", "zzz", "--db", db], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no task 'zzz'" in bad.stderr


def test_unfinished_and_failed_tasks_are_shown_as_such(tmp_path):
    from tel_records import emit_run

    from agentroute.budget import Spend
    from agentroute.errors import AgentError
    from agentroute.records import RunResult, StepStart, TaskStart

    db = str(tmp_path / "mixed.db")
    tracing = configure_tracing(exporters="none", store_url=db)
    hooks = tracing.hooks[0]
    emit_run(hooks, task_id="crashed-task", n_steps=2, crash_in_step=1)
    hooks.on_task_start(TaskStart("failed-task", "support", "rules", "3", BUDGET, None, {}, 1))
    hooks.on_step_start(StepStart("failed-task", 0, "triage", 2))
    err = AgentError("agent 'triage' raised ValueError: bad input", agent="triage")
    hooks.on_task_end(
        RunResult("failed-task", {}, Spend(), BUDGET, True, "error:AgentError", error=err, started_ns=1, ended_ns=3)
    )
    tracing.flush()
    running = [json.loads(x) for x in run("list", "--db", db, "--json", "--status", "running").output.splitlines()]
    assert [x["task_id"] for x in running] == ["crashed-task"]
    out = run("show", "crashed", "--db", db).output
    assert "running (unfinished)" in out and "step 0" in out and "step 1" not in out
    out = run("show", "failed", "--db", db).output
    assert "error" in out and "AgentError: agent 'triage' raised ValueError: bad input" in out
    assert "unfinished" in out  # the step that never reported its end
    tracing.shutdown()
