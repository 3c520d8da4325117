"""Infrastructure faults: PostgreSQL and Redis cut off behind a TCP proxy while tasks run.

The trace exporter loses nothing under a short outage and leaves no finished task ``running``; ``flush()`` says
what is still pending; a dead process's spool is replayed by the next exporter. Shared ledgers ride out a short
outage and raise ``LedgerError`` (a ``RunError``), never a raw driver error, after a long one.
"""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from agentroute import Budget, policies, providers
from agentroute.budget import Ledger, SharedBudget, Spend
from agentroute.errors import LedgerError, RunError
from agentroute.examples import support_graph, support_tasks
from agentroute.ledgers import RedisLedger, SqlLedger
from agentroute.store import SqlSpanExporter, get_engine
from agentroute.store.engine import forget
from agentroute.telemetry import configure_tracing

BUDGET = Budget(usd="0.004", tokens=3000, steps=4)


def _counts(url: str) -> tuple[int, int, int]:
    with get_engine(url).connect() as conn:
        tasks = conn.execute(text("select count(*) from agentroute_tasks")).scalar_one()
        running = conn.execute(text("select count(*) from agentroute_tasks where status = 'running'")).scalar_one()
        decisions = conn.execute(text("select count(*) from agentroute_decisions")).scalar_one()
    return int(tasks), int(running), int(decisions)


def test_a_short_database_outage_loses_no_trace(pg_proxy, spool):
    proxy, url = pg_proxy
    tracing = configure_tracing(exporters="none", store_url=url, schedule_delay_millis=50)
    app = support_graph().compile(policy=policies.Random(seed=4), provider=providers.Simulated(seed=4),
                                  hooks=tracing.hooks)
    questions = [{"question": t["question"]} for t in support_tasks(60, seed=4)]
    results = []

    def work() -> None:
        for q in questions:
            results.append(app.run(q, budget=BUDGET))
            time.sleep(0.05)

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.8)
    proxy.cut()  # PostgreSQL is gone for three seconds while tasks keep running
    time.sleep(1.5)
    during = tracing.flush(timeout_millis=500)
    assert not during and during.pending_rows > 0  # flush says rows are waiting, it does not claim success
    time.sleep(1.5)
    proxy.restore()
    t.join()
    report = tracing.flush()
    assert report, report
    assert report.pending_rows == report.dropped_rows == report.dropped_spans == 0
    tasks, running, decisions = _counts(url)
    assert tasks == len(questions) and running == 0  # no finished task stays `running`
    assert decisions == sum(len(r.decisions) for r in results)
    tracing.shutdown()
    assert not list(spool.glob("*.jsonl"))  # the spool is empty and gone


def test_a_spool_left_by_a_dead_process_is_replayed_by_the_next_exporter(pg_proxy, spool):
    proxy, url = pg_proxy
    tracing = configure_tracing(exporters="none", store_url=url, schedule_delay_millis=50)
    app = support_graph().compile(policy=policies.Cheapest(), provider=providers.Simulated(seed=5),
                                  hooks=tracing.hooks)
    proxy.cut()
    results = [app.run({"question": t["question"]}, budget=BUDGET) for t in support_tasks(5, seed=5)]
    report = tracing.flush(timeout_millis=300)
    assert report.pending_rows > 0
    for p in tracing.processors:  # the process "dies": its exporter lets go of the spool without replaying it
        p.sql.spool.close()
    assert list(spool.glob("*.jsonl"))
    proxy.restore()
    forget(url)
    SqlSpanExporter(url)  # the next exporter of this database replays what was left
    tasks, running, decisions = _counts(url)
    assert tasks == 5 and running == 0 and decisions == sum(len(r.decisions) for r in results)
    assert not list(spool.glob("*.jsonl"))


def _ledger(kind: str, url: str) -> RedisLedger | SqlLedger:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    return RedisLedger(url, name=name, lease=30) if kind == "redis" else SqlLedger(url, name=name, lease=30)


@pytest.mark.parametrize("kind", ["redis", "sql"])
def test_a_ledger_rides_out_a_short_outage_and_reports_a_long_one(kind, request):
    proxy, url = request.getfixturevalue("redis_proxy" if kind == "redis" else "pg_proxy")
    backend = _ledger(kind, url)
    team = SharedBudget(Budget(usd="1"), backend=backend)
    led = Ledger(Budget(), parents=[team.ledger])
    r = led.reserve(Spend(usd=Decimal("0.2")))
    proxy.cut()
    threading.Timer(1.0, proxy.restore).start()
    r.commit(Spend(usd=Decimal("0.1")))  # retried through the outage, under its hold id
    r.commit(Spend(usd=Decimal("0.1")))
    assert backend.totals() == (Spend(usd=Decimal("0.1")), Spend(usd=Decimal(0)))
    proxy.cut()
    with pytest.raises(LedgerError) as info:
        led.reserve(Spend(usd=Decimal("0.2")))
    assert isinstance(info.value, RunError) and info.value.backend == backend.kind
    assert "unreachable" in str(info.value)
    held = None
    proxy.restore()
    held = led.reserve(Spend(usd=Decimal("0.2")))
    proxy.cut()
    with pytest.raises(LedgerError):
        held.commit(Spend(usd=Decimal("0.05")))
    proxy.restore()
    held.commit(Spend(usd=Decimal("0.05")))  # the settle that failed is simply called again
    assert backend.totals() == (Spend(usd=Decimal("0.15")), Spend(usd=Decimal(0)))
    backend.reset(spend=True)
    backend.close()
