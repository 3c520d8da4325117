"""A span exporter that writes agentroute's spans to the store, in batches, off the hot path, losing nothing.

The store is built *from the spans* (``agentroute.record`` says which row a span becomes; a decision's row is
:meth:`DecisionRecord.from_attributes(...).to_row() <agentroute.routing.DecisionRecord.to_row>`), so what the
tables hold is exactly what the traces say. :class:`SqlSpanProcessor` is a ``BatchSpanProcessor`` that also
queues a snapshot of each task span when it *starts*: the task row is written with status ``running`` in the
first batch, and only updated when the task ends. A process that dies mid-task therefore leaves the task marked
unfinished, and every step that ended and was exported before the crash keeps all its rows (each batch is one
transaction).

When the database is unreachable, a batch is retried with backoff (under a second in all), then appended to a
local spool (:mod:`agentroute.store._spool`) and reported exported; while the database stays down, later batches
go straight to the spool, and it is replayed, oldest first, as soon as a write works again (at the latest on
``force_flush`` and ``shutdown``, or by the next exporter of the same database). Every insert is idempotent, so
nothing is written twice. Only a batch the database *refuses* (not an outage) is dropped, logged and counted:
:meth:`SqlSpanExporter.report` says what is still pending and what was dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from agentroute import records as A  # the span keys, spelled with the records they carry
from agentroute.records import FlushReport
from agentroute.routing import DecisionRecord
from agentroute.store._spool import Batch, Spool, rows_in
from agentroute.store.engine import engine_key, get_engine, upsert
from agentroute.store.models import CallRow, DecisionRow, LedgerRow, StepRow, TaskRow, table
from agentroute.store.schema import ensure_schema

log = logging.getLogger("agentroute.store")
_KEYS = ("start", "task", "step", "decision", "call", "ledger")
_BACKOFF = (0.1, 0.3, 0.6)
"""Pauses between the tries of one batch before it is spooled (about a second in all)."""


def spend_parts(value: str | None) -> tuple[int | None, int | None, bool]:
    """``(nano, atto, rest)`` of a spend string: ``value == nano/1e9 + atto/1e18`` (plus more when ``rest``)."""
    if value is None:
        return None, None, False
    try:
        d = Decimal(value)
    except InvalidOperation:
        return None, None, False
    with localcontext() as ctx:
        ctx.prec = 80
        scaled = d.scaleb(18)
        whole = int(scaled)
        nano, atto = divmod(whole, 10**9)
        return nano, atto, scaled != whole


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def task_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``agentroute_tasks`` row of a task span (a start snapshot has no end time: status ``running``)."""
    a: Mapping[str, Any] = span.attributes or {}
    ended = span.end_time is not None
    ctx = span.context
    spent = a.get(A.BUDGET_SPENT + "usd_exact")
    nano, atto, rest = spend_parts(spent)
    return {
        "task_id": str(a.get(A.TASK_ID, "")),
        "trace_id": _hex(ctx.trace_id, 32) if ctx is not None else "",
        "graph": str(a.get(A.GRAPH_NAME, "")),
        "policy": str(a.get(A.POLICY_NAME, "")),
        "policy_version": str(a.get(A.POLICY_VERSION, "")),
        "status": str(a.get(A.TASK_STATUS, "running")) if ended else "running",
        "truncated": bool(a.get(A.TASK_TRUNCATED, False)),
        "reason": a.get(A.TASK_REASON),
        "error_type": a.get(A.ERROR_TYPE),
        "error": a.get(A.ERROR_MESSAGE),
        "shared_budget": a.get(A.BUDGET_SHARED),
        "limit_usd": a.get(A.BUDGET_LIMIT + "usd_exact"),
        "limit_tokens": a.get(A.BUDGET_LIMIT + "tokens"),
        "limit_steps": a.get(A.BUDGET_LIMIT + "steps"),
        "limit_seconds": a.get(A.BUDGET_LIMIT + "seconds"),
        "spent_usd": spent,
        "spent_tokens": a.get(A.BUDGET_SPENT + "tokens"),
        "spent_steps": a.get(A.BUDGET_SPENT + "steps"),
        "spent_seconds": a.get(A.BUDGET_SPENT + "seconds"),
        "spent_usd_nano": nano,
        "spent_usd_atto": atto,
        "spent_usd_rest": rest,
        "quality": a.get(A.TASK_QUALITY),
        "steps": a.get(A.TASK_STEPS),
        "decisions": a.get(A.TASK_DECISIONS),
        "features": _loads(a.get(A.TASK_FEATURES)),
        "input": _loads(a.get(A.TASK_INPUT)),
        "started_ns": span.start_time or 0,
        "ended_ns": span.end_time,
    }


def step_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``agentroute_steps`` row of an ``invoke_agent`` span."""
    a: Mapping[str, Any] = span.attributes or {}
    return {
        "task_id": str(a.get(A.TASK_ID, "")),
        "step": int(a.get(A.STEP_INDEX, -1)),
        "agent": str(a.get(A.GEN_AI_AGENT_NAME, "")),
        "span_id": _hex(span.context.span_id, 16) if span.context is not None else "",
        "cost_usd": a.get(A.COST_USD_EXACT),
        "tokens": int(a.get(A.USAGE_TOKENS, 0)),
        "error_type": a.get(A.ERROR_TYPE),
        "started_ns": span.start_time or 0,
        "ended_ns": span.end_time or 0,
    }


def decision_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``agentroute_decisions`` row of a ``route`` span: the span's :class:`DecisionRecord`, as a row."""
    a: Mapping[str, Any] = span.attributes or {}
    row = DecisionRecord.from_attributes(a).to_row()
    row["graph"] = str(a.get(A.GRAPH_NAME, ""))
    row["at_ns"] = span.end_time or span.start_time or 0
    return row


def call_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``agentroute_model_calls`` row of a ``chat`` span."""
    a: Mapping[str, Any] = span.attributes or {}
    return {
        "task_id": str(a.get(A.TASK_ID, "")),
        "step": int(a.get(A.STEP_INDEX, 0)),
        "agent": str(a.get(A.GRAPH_NODE, "")),
        "tier": str(a.get(A.TIER, "")),
        "model": str(a.get(A.GEN_AI_REQUEST_MODEL, "")),
        "provider": str(a.get(A.GEN_AI_PROVIDER_NAME, "")),
        "attempt": int(a.get(A.CALL_ATTEMPT, 1)),
        "fallback": bool(a.get(A.CALL_FALLBACK, False)),
        "max_tokens": a.get(A.GEN_AI_REQUEST_MAX_TOKENS),
        "timeout": a.get(A.CALL_TIMEOUT),
        "input_tokens": int(a.get(A.GEN_AI_USAGE_INPUT_TOKENS, 0)),
        "output_tokens": int(a.get(A.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
        "cost_usd": a.get(A.COST_USD_EXACT),
        "response_model": a.get(A.GEN_AI_RESPONSE_MODEL),
        "error_type": a.get(A.ERROR_TYPE),
        "error": a.get(A.ERROR_MESSAGE),
        "input_messages": _loads(a.get(A.GEN_AI_INPUT_MESSAGES)),
        "output_messages": _loads(a.get(A.GEN_AI_OUTPUT_MESSAGES)),
        "span_id": _hex(span.context.span_id, 16) if span.context is not None else "",
        "started_ns": span.start_time or 0,
        "ended_ns": span.end_time or 0,
    }


def ledger_rows(span: ReadableSpan, task_id: str, step: int | None) -> list[dict[str, Any]]:
    """The ledger-move rows carried as events of a step span (or of the task span between steps)."""
    rows = []
    span_id = _hex(span.context.span_id, 16) if span.context is not None else ""
    for seq, ev in enumerate(span.events):
        if ev.name != A.LEDGER_EVENT:
            continue
        a: Mapping[str, Any] = ev.attributes or {}
        rows.append({
            "task_id": task_id,
            "span_id": span_id,
            "seq": seq,
            "step": step,
            "op": str(a.get(A.LEDGER_OP, "")),
            "what": str(a.get(A.LEDGER_WHAT, "")),
            "usd": a.get(A.LEDGER_AMOUNT + "usd_exact"),  # absent: unknown cost
            "tokens": a.get(A.LEDGER_AMOUNT + "tokens", 0),  # absent: zero (events record non-zero amounts)
            "steps": a.get(A.LEDGER_AMOUNT + "steps", 0),
            "seconds": a.get(A.LEDGER_AMOUNT + "seconds", 0.0),
            "at_ns": ev.timestamp,
        })  # fmt: skip
    return rows


def _outage(e: BaseException) -> bool:
    """True for errors of reaching the database (worth retrying), false for a statement it refused."""
    if isinstance(e, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(e, DBAPIError) and bool(e.connection_invalidated)


class SqlSpanExporter(SpanExporter):
    """Writes agentroute spans as rows of the store (other spans are ignored); see the module docstring.

    ``url`` as for :func:`~agentroute.store.engine.get_engine`. The schema is checked (and created) here, at
    configuration time, so a wrong or unreachable database fails loudly before any task runs. ``spool`` is the
    spool's directory (default: :func:`~agentroute.store._spool.spool_dir`).
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None, spool: Any = None) -> None:
        self.engine = engine if engine is not None else get_engine(url)
        ensure_schema(self.engine)
        self.spool = Spool(engine_key(self.engine), spool)
        self.dropped_rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self._down_until = 0.0
        self._pause = 0.5
        if self.spool.has_orphans():  # a process that died while the database was down left rows behind
            self._replay()

    def rows(self, spans: Sequence[ReadableSpan]) -> Batch:
        """Group the rows that ``spans`` become, by table (oldest first); pure, no I/O."""
        out: Batch = {k: [] for k in _KEYS}
        for span in spans:
            a = span.attributes or {}
            rec = a.get(A.RECORD)
            if rec == "task":
                row = task_row(span)
                if span.end_time is None:
                    out["start"].append(row)
                else:
                    out["task"].append(row)
                    out["ledger"].extend(ledger_rows(span, row["task_id"], None))
            elif rec == "step":
                row = step_row(span)
                out["step"].append(row)
                out["ledger"].extend(ledger_rows(span, row["task_id"], row["step"]))
            elif rec == "decision":
                out["decision"].append(decision_row(span))
            elif rec == "call":
                out["call"].append(call_row(span))
        return out

    def write(self, rows: Batch) -> None:
        """Write one batch in one transaction (idempotent: every row has a unique key)."""
        eng = self.engine
        with eng.begin() as conn:
            if rows.get("start"):
                conn.execute(upsert(eng, table(TaskRow)).on_conflict_do_nothing(), rows["start"])
            if rows.get("task"):
                ins = upsert(eng, table(TaskRow))
                final = {k: ins.excluded[k] for k in rows["task"][0] if k != "task_id"}
                conn.execute(ins.on_conflict_do_update(index_elements=["task_id"], set_=final), rows["task"])
            for key, model in (("step", StepRow), ("decision", DecisionRow), ("call", CallRow), ("ledger", LedgerRow)):
                if rows.get(key):
                    conn.execute(upsert(eng, table(model)).on_conflict_do_nothing(), rows[key])

    def _replay(self) -> bool:
        """Write what the spool holds; True when it is empty afterwards."""
        try:
            n = self.spool.replay(self.write)
        except Exception as e:
            if not _outage(e):
                log.exception("agentroute: the trace store refused spooled rows; they stay in %s", self.spool.dir)
            return False
        if n:
            log.warning("agentroute: %d spooled row(s) written to the trace store", n)
        self._down_until, self._pause = 0.0, 0.5
        return True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one batch (retried, spooled when the database is down); FAILURE only for a refused batch."""
        if self._closed:
            return SpanExportResult.FAILURE
        rows = self.rows(spans)
        if not any(rows.values()):
            return SpanExportResult.SUCCESS
        with self._lock:
            if time.monotonic() < self._down_until or (self.spool.pending and not self._replay()):
                self.spool.append(rows)
                return SpanExportResult.SUCCESS
            for pause in (*_BACKOFF, None):
                try:
                    self.write(rows)
                    return SpanExportResult.SUCCESS
                except Exception as e:
                    if not _outage(e):
                        self.dropped_rows += rows_in(rows)
                        log.exception("agentroute: the trace store refused %d row(s); dropped", rows_in(rows))
                        return SpanExportResult.FAILURE
                    if pause is None:
                        log.warning("agentroute: trace store unreachable (%s); spooling to %s",
                                    str(getattr(e, "orig", e)).splitlines()[0] if str(e) else type(e).__name__,
                                    self.spool.dir)
                    else:
                        time.sleep(pause)
            self.spool.append(rows)
            self._down_until = time.monotonic() + self._pause
            self._pause = min(self._pause * 2, 8.0)
            return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Replay the spool until it is empty or ``timeout_millis`` passed; True when nothing is pending."""
        deadline = time.monotonic() + timeout_millis / 1000
        pause = 0.1
        while True:
            with self._lock:
                if not self.spool.pending or self._replay():
                    return True
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def report(self) -> FlushReport:
        """Rows still spooled and rows dropped so far."""
        return FlushReport(pending_rows=self.spool.pending, dropped_rows=self.dropped_rows)

    def shutdown(self, timeout_millis: int = 10_000) -> None:
        """Replay the spool (for up to ``timeout_millis``), stop; on SQLite fold the write-ahead log in."""
        if self._closed:
            return
        if self.spool.pending and not self.force_flush(timeout_millis):
            log.warning("agentroute: %d row(s) stay spooled in %s; the next exporter of this database writes them",
                        self.spool.pending, self.spool.dir)
        self._closed = True
        self.spool.close()
        if self.engine.dialect.name == "sqlite":
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception:  # a busy reader: the log is folded in later, nothing is lost
                log.debug("agentroute: WAL checkpoint skipped", exc_info=True)


class SqlSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` for the store: snapshots task spans at start, replays the spool on flush.

    It also counts the spans a full queue drops (reported by :meth:`report`).
    """

    def __init__(self, span_exporter: SqlSpanExporter, **kw: Any) -> None:
        super().__init__(span_exporter, **kw)
        self.sql = span_exporter
        self.dropped_spans = 0
        self._max_queue = int(kw.get("max_queue_size") or 2048)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Queue the started task span, so its row exists (status ``running``) before the task ends."""
        attrs = span.attributes or {}
        if attrs.get(A.RECORD) != "task":
            return
        snapshot = ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=dict(attrs),
            kind=span.kind,
            start_time=span.start_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        self.on_end(snapshot)

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span``; count it when the queue is full (the SDK then drops the oldest span)."""
        queued = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        if queued is not None and len(queued) >= self._max_queue:
            self.dropped_spans += 1
        super().on_end(span)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export every queued span, then replay the spool; True when nothing is left pending."""
        done = super().force_flush(timeout_millis)
        return self.sql.force_flush(timeout_millis or 30_000) and done

    def report(self) -> FlushReport:
        """What is still pending or was dropped, in this processor and its exporter."""
        return self.sql.report() + FlushReport(dropped_spans=self.dropped_spans)


__all__ = [
    "FlushReport",
    "SqlSpanExporter",
    "SqlSpanProcessor",
    "call_row",
    "decision_row",
    "ledger_rows",
    "spend_parts",
    "step_row",
    "task_row",
]
