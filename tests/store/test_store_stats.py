"""``traces stats`` aggregates in SQL and agrees, exactly, with the same aggregation done row by row."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal, localcontext

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute.store import SqlSpanExporter, get_engine
from agentroute.store.exporter import spend_parts
from agentroute.store.queries import stats

_spend = st.none() | st.decimals(min_value=0, max_value=Decimal(50), places=30, allow_nan=False) | st.sampled_from(
    [Decimal("1E-30"), Decimal("0.000000000000000000123"), Decimal("12345678.123456789")])
_task = st.fixed_dictionaries({
    "policy": st.sampled_from(["rules", "cheapest", "learned:ppo"]),
    "graph": st.sampled_from(["support", "research"]),
    "status": st.sampled_from(["completed", "truncated", "error", "running"]),
    "reason": st.sampled_from(["completed", "budget:usd", "budget:steps", "seconds"]),
    "spent": _spend,
    "quality": st.none() | st.floats(0, 1),
    "tiers": st.lists(st.sampled_from(["small", "large", "xl"]), max_size=4),
})


def _rows(tasks):
    rows, decisions = [], []
    for t in tasks:
        tid = uuid.uuid4().hex
        running = t["status"] == "running"
        spent = None if running or t["spent"] is None else str(t["spent"])
        nano, atto, rest = spend_parts(spent)
        rows.append({
            "task_id": tid, "trace_id": "", "graph": t["graph"], "policy": t["policy"], "policy_version": "1",
            "status": t["status"], "truncated": t["status"] == "truncated", "reason": t["reason"],
            "spent_usd": spent, "spent_usd_nano": nano, "spent_usd_atto": atto, "spent_usd_rest": rest,
            "quality": t["quality"], "started_ns": 1, "ended_ns": None if running else 2,
        })  # fmt: skip
        for i, tier in enumerate(t["tiers"]):
            decisions.append({"task_id": tid, "idx": i, "kind": "model", "point": "a.model", "node": "a", "step": 0,
                              "chosen": tier, "graph": t["graph"], "policy": t["policy"], "at_ns": 1})
        decisions.append({"task_id": tid, "idx": 99, "kind": "agent", "point": "route:a", "node": "a", "step": 1,
                          "chosen": "__end__", "graph": t["graph"], "policy": t["policy"], "at_ns": 1})
    return rows, decisions


def _reference(tasks, by):
    out = {}
    for key in sorted({t[by] for t in tasks}):
        mine = [t for t in tasks if t[by] == key]
        done = [t for t in mine if t["status"] != "running"]
        priced = [t for t in done if t["spent"] is not None]
        with localcontext() as ctx:
            ctx.prec = 80
            spend = sum((t["spent"] for t in priced), Decimal(0))
        q = [t["quality"] for t in mine if t["quality"] is not None]
        tiers = Counter(x for t in mine for x in t["tiers"])
        n_tiers = sum(tiers.values())
        out[key] = {
            by: key, "tasks": len(mine), "completed": sum(t["status"] == "completed" for t in mine),
            "truncated": sum(t["status"] == "truncated" for t in mine),
            "error": sum(t["status"] == "error" for t in mine),
            "running": len(mine) - len(done), "spend_usd": spend,
            "mean_spend_usd": spend / len(priced) if priced else None,
            "mean_quality": sum(q) / len(q) if q else None,
            "exhaustion_rate": (sum(t["status"] == "truncated" and t["reason"].startswith("budget") for t in done)
                                / len(done)) if done else None,
            "tier_mix": {k: v / n_tiers for k, v in sorted(tiers.items())},
        }  # fmt: skip
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tasks=st.lists(_task, min_size=1, max_size=25))
def test_sql_stats_equal_the_row_by_row_aggregation(store_url, tasks):
    exporter = SqlSpanExporter(store_url)
    engine = get_engine(store_url)
    with engine.begin() as conn:  # a fresh store per example: the property is about these rows only
        conn.exec_driver_sql("DELETE FROM agentroute_tasks")
        conn.exec_driver_sql("DELETE FROM agentroute_decisions")
    rows, decisions = _rows(tasks)
    exporter.write({"task": rows, "decision": decisions})
    for by in ("policy", "graph"):
        want = _reference(tasks, by)
        got = {g[by]: g for g in stats(engine, by=by)}
        assert got.keys() == want.keys()
        for key, w in want.items():
            g = got[key]
            for k in ("tasks", "completed", "truncated", "error", "running", "exhaustion_rate"):
                assert g[k] == w[k], (key, k)
            assert Decimal(g["spend_usd"]) == w["spend_usd"]  # exact, even below 1e-18
            assert (g["mean_spend_usd"] is None) == (w["mean_spend_usd"] is None)
            if w["mean_spend_usd"] is not None:
                assert abs(Decimal(g["mean_spend_usd"]) - w["mean_spend_usd"]) <= Decimal("1e-20")
            assert (g["mean_quality"] is None) == (w["mean_quality"] is None)
            if w["mean_quality"] is not None:
                assert abs(g["mean_quality"] - w["mean_quality"]) < 1e-9
            assert g["tier_mix"].keys() == w["tier_mix"].keys()
            assert all(abs(g["tier_mix"][t] - w["tier_mix"][t]) < 1e-12 for t in w["tier_mix"])
    exporter.shutdown()


def test_stats_use_the_covering_indexes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    exporter = SqlSpanExporter(url)
    engine = get_engine(url)
    from agentroute.store.queries import _stats_statements

    with engine.connect() as conn:
        for stmt in _stats_statements("policy") + _stats_statements("graph"):
            compiled = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled))
            assert "COVERING INDEX" in plan, plan
    exporter.shutdown()
