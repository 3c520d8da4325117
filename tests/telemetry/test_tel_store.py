"""Conformance suite of the SQL trace store, run on SQLite and on PostgreSQL (skipped without it, failed in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sqlalchemy import text
from sqlmodel import Session, col, select
from tel_records import FakeRun, emit_run

from agentroute.store import (
    SCHEMA_VERSION,
    CallRow,
    DecisionRow,
    LedgerRow,
    SchemaMismatch,
    SqlSpanExporter,
    StepRow,
    TaskRow,
    ensure_schema,
    get_engine,
)
from agentroute.store.engine import StoreError, forget
from agentroute.store.exporter import SqlSpanProcessor
from agentroute.telemetry import OTelHooks, configure_tracing

HERE = Path(__file__).resolve().parent


def _rows(url: str, model, task_id: str, order):
    with Session(get_engine(url)) as s:
        return list(s.exec(select(model).where(model.task_id == task_id).order_by(order)))


def _sync_hooks(url: str) -> tuple[OTelHooks, TracerProvider]:
    """Hooks whose spans are written synchronously (no batching): for property tests."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SqlSpanExporter(url)))
    return OTelHooks(provider), provider


def test_schema_is_created_on_first_use_and_versioned(store_url):
    engine = get_engine(store_url)
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(text("select version from agentroute_schema")).scalar_one() == SCHEMA_VERSION
    forget(store_url)
    assert ensure_schema(get_engine(store_url)) == SCHEMA_VERSION  # a second opening keeps it


def test_rows_are_exactly_what_the_run_recorded(store_url):
    tracing = configure_tracing(exporters="none", store_url=store_url)
    run: FakeRun = emit_run(tracing.hooks[0], task_id="t-rows", n_steps=2, fail_first_call=True)
    assert tracing.flush()
    (task,) = _rows(store_url, TaskRow, "t-rows", TaskRow.task_id)
    res = run.result
    assert task.status == "completed" and task.graph == "support" and task.policy == "rules"
    assert task.policy_version == "3" and task.truncated is False and task.reason == "completed"
    assert Decimal(task.spent_usd) == res.spent.usd and task.spent_tokens == res.spent.tokens
    assert task.spent_steps == 2 and task.limit_usd == "0.01" and task.limit_tokens == 5000 and task.limit_steps == 3
    assert task.quality == 0.8 and task.steps == 2 and task.decisions == 4
    assert task.started_ns == run.start.started_ns and task.ended_ns == res.ended_ns
    assert task.features == {"priority": 2, "vip": True} and task.input is None  # content off by default
    assert len(task.trace_id) == 32

    steps = _rows(store_url, StepRow, "t-rows", StepRow.step)
    assert [(s.step, s.agent, s.tokens, Decimal(s.cost_usd)) for s in steps] == [
        (e.step, e.agent, e.tokens, e.cost_usd) for e in run.step_ends
    ]
    decisions = _rows(store_url, DecisionRow, "t-rows", DecisionRow.idx)
    assert [d.idx for d in decisions] == [d.index for d in run.decisions]
    d, rec = decisions[0], run.decisions[0]
    assert (d.kind, d.point, d.node, d.step, d.chosen) == (rec.kind, rec.point, rec.node, rec.step, rec.chosen)
    assert d.candidates == ["small", "large"] and d.probabilities == [0.75, 0.25] and d.scores == {"small": 0.9}
    assert d.masked == [{"id": "xl", "reason": rec.masked[0].reason}]
    assert d.propensity == pytest.approx(rec.propensity) and d.weights_hash == "abc123"
    assert d.budget_before == {"usd": "0.01", "tokens": 5000, "steps": 3, "seconds": None}
    assert d.reservation["tokens"] == 530 and Decimal(d.cost_usd) == rec.cost_usd and d.quality == 0.8
    assert d.candidate_details[1]["cost_estimate"] == "0.005125"
    agent = decisions[1]
    assert agent.kind == "agent" and agent.chosen == "expert" and agent.candidates == ["__end__", "expert"]

    calls = _rows(store_url, CallRow, "t-rows", CallRow.started_ns)
    assert [(c.tier, c.fallback, c.error_type) for c in calls] == [
        (c.tier, c.fallback, c.error_type) for c in run.calls
    ]
    assert calls[1].input_tokens == 18 and calls[1].max_tokens == 512 and calls[1].provider == "openai"
    ledger = _rows(store_url, LedgerRow, "t-rows", LedgerRow.at_ns)
    assert [(x.op, x.what, x.at_ns) for x in ledger] == [(e.op, e.what, e.at_ns) for e in run.ledger]
    by_step = {x.what: x.step for x in ledger if x.op == "reserve"}
    assert by_step["step:triage"] is None and by_step["call:triage:small"] == 0
    tracing.shutdown()


def test_money_stays_exact(store_url):
    cost = Decimal("0.000000123456789012345678901")
    hooks, provider = _sync_hooks(store_url)
    run = emit_run(hooks, task_id="t-exact", n_steps=3, cost=cost)
    (task,) = _rows(store_url, TaskRow, "t-exact", TaskRow.task_id)
    assert Decimal(task.spent_usd) == cost * 3 == run.result.spent.usd
    commits = [
        x
        for x in _rows(store_url, LedgerRow, "t-exact", LedgerRow.at_ns)
        if x.what.startswith("call:") and x.op == "commit"
    ]
    assert sum(Decimal(x.usd) for x in commits) == cost * 3
    provider.shutdown()


def test_the_task_row_exists_while_the_task_runs(store_url):
    tracing = configure_tracing(exporters="none", store_url=store_url)
    emit_run(tracing.hooks[0], task_id="t-live", crash_in_step=1, n_steps=2)
    tracing.flush()
    (task,) = _rows(store_url, TaskRow, "t-live", TaskRow.task_id)
    assert task.status == "running" and task.ended_ns is None and task.graph == "support"
    assert [s.step for s in _rows(store_url, StepRow, "t-live", StepRow.step)] == [0]
    tracing.shutdown()


def test_a_crash_mid_task_keeps_finished_steps_and_marks_the_task_unfinished(store_url, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(HERE)!r})
        from tel_records import emit_run
        from agentroute.telemetry import configure_tracing
        tracing = configure_tracing(exporters="none", store_url={store_url!r}, schedule_delay_millis=20)
        from sqlalchemy import text
        from agentroute.store import get_engine
        emit_run(tracing.hooks[0], task_id="t-crash", n_steps=3, crash_in_step=2)
        deadline = time.time() + 20   # the batch processor writes on its own schedule, off the task's thread
        while time.time() < deadline:
            with get_engine({store_url!r}).connect() as conn:
                if conn.execute(text("select count(*) from agentroute_decisions")).scalar() == 4:
                    break
            time.sleep(0.05)
        os._exit(137)     # die without flushing or shutting down, as a killed worker would
    """)
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137, proc.stderr
    forget(store_url)
    (task,) = _rows(store_url, TaskRow, "t-crash", TaskRow.task_id)
    assert task.status == "running" and task.ended_ns is None
    assert [s.step for s in _rows(store_url, StepRow, "t-crash", StepRow.step)] == [0, 1]
    decisions = _rows(store_url, DecisionRow, "t-crash", DecisionRow.idx)
    assert [(d.kind, d.step) for d in decisions] == [("model", 0), ("agent", 1), ("model", 1), ("agent", 2)]
    assert [c.step for c in _rows(store_url, CallRow, "t-crash", CallRow.started_ns)] == [0, 1]


def test_a_database_of_another_schema_version_is_refused(store_url):
    engine = get_engine(store_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("update agentroute_schema set version = 0"))
    forget(store_url)
    with pytest.raises(
        SchemaMismatch, match=rf"older agentroute schema \(version 0; this agentroute uses {SCHEMA_VERSION}\)"
    ) as info:
        ensure_schema(get_engine(store_url))
    assert info.value.found == 0 and info.value.expected == SCHEMA_VERSION
    assert "agentroute store upgrade --db" in str(info.value)
    with pytest.raises(SchemaMismatch):
        SqlSpanExporter(store_url)  # the exporter refuses before any task runs


def test_tables_without_a_version_are_an_older_schema(store_url):
    engine = get_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("create table agentroute_tasks (task_id varchar primary key)"))
    with pytest.raises(SchemaMismatch, match="version 0"):
        ensure_schema(engine)


def test_reading_an_empty_database_does_not_create_tables(store_url):
    engine = get_engine(store_url)
    with pytest.raises(StoreError, match="no agentroute traces"):
        ensure_schema(engine, create=False)
    with engine.connect() as conn:
        names = (
            conn.execute(
                text(
                    "select name from sqlite_master where type='table'"
                    if engine.dialect.name == "sqlite"
                    else "select table_name from information_schema.tables where table_schema = current_schema()"
                )
            )
            .scalars()
            .all()
        )
    assert not [n for n in names if n.startswith("agentroute_")]


def test_exporting_the_same_spans_twice_adds_no_duplicate_steps_or_decisions(store_url):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    emit_run(OTelHooks(provider), task_id="t-twice", n_steps=2)
    exporter = SqlSpanExporter(store_url)
    spans = mem.get_finished_spans()
    exporter.export(spans)
    exporter.export(spans)
    assert len(_rows(store_url, StepRow, "t-twice", StepRow.step)) == 2
    assert len(_rows(store_url, DecisionRow, "t-twice", DecisionRow.idx)) == 4
    assert len(_rows(store_url, TaskRow, "t-twice", TaskRow.task_id)) == 1


def test_concurrent_tasks_from_two_configurations_all_land(store_url):
    import threading

    t1 = configure_tracing(exporters="none", store_url=store_url)
    t2 = configure_tracing(exporters="none", store_url=store_url)
    ids = [f"c{i}-{uuid.uuid4().hex[:6]}" for i in range(12)]
    threads = [
        threading.Thread(target=emit_run, args=((t1 if i % 2 else t2).hooks[0],), kwargs={"task_id": tid})
        for i, tid in enumerate(ids)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1.flush()
    t2.flush()
    with Session(get_engine(store_url)) as s:
        done = s.exec(select(TaskRow.task_id).where(col(TaskRow.status) == "completed")).all()
        n_steps = len(s.exec(select(StepRow.id).where(col(StepRow.task_id).in_(ids))).all())
    assert set(ids) <= set(done) and n_steps == 2 * len(ids)
    t1.shutdown()
    t2.shutdown()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_steps=st.integers(1, 4),
    fail_first=st.booleans(),
    cents=st.decimals(min_value=Decimal("0.000000001"), max_value=Decimal("0.01"), places=12),
)
def test_property_row_counts_and_spend_match_the_records(store_url, n_steps, fail_first, cents):
    hooks, provider = _sync_hooks(store_url)
    tid = uuid.uuid4().hex
    run = emit_run(hooks, task_id=tid, n_steps=n_steps, fail_first_call=fail_first, cost=cents)
    assert len(_rows(store_url, StepRow, tid, StepRow.step)) == n_steps
    assert len(_rows(store_url, DecisionRow, tid, DecisionRow.idx)) == len(run.decisions) == 2 * n_steps
    assert len(_rows(store_url, CallRow, tid, CallRow.started_ns)) == len(run.calls)
    assert len(_rows(store_url, LedgerRow, tid, LedgerRow.at_ns)) == len(run.ledger)
    (task,) = _rows(store_url, TaskRow, tid, TaskRow.task_id)
    steps_total = sum(Decimal(s.cost_usd) for s in _rows(store_url, StepRow, tid, StepRow.step))
    assert Decimal(task.spent_usd) == steps_total == cents * n_steps
    provider.shutdown()


def test_the_processor_writes_the_task_row_at_start_only_for_task_spans(store_url):
    provider = TracerProvider()
    exporter = SqlSpanExporter(store_url)
    processor = SqlSpanProcessor(exporter, schedule_delay_millis=10_000)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    span = tracer.start_span("unrelated")
    hooks = OTelHooks(provider)
    emit_run(hooks, task_id="t-start", crash_in_step=0)
    processor.force_flush()
    (task,) = _rows(store_url, TaskRow, "t-start", TaskRow.task_id)
    assert task.status == "running"
    span.end()
    provider.shutdown()
