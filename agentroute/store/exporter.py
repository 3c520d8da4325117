"""A span exporter that writes agentroute's spans to the SQL store, in batches, off the hot path.

The store is built *from the spans* (``agentroute.record`` says which row a span becomes), so what the tables
hold is exactly what the traces say. :class:`SqlSpanProcessor` is a ``BatchSpanProcessor`` that also queues a
snapshot of each task span when it *starts*: the task row is written with status ``running`` in the first
batch, and only updated when the task ends. A process that dies mid-task therefore leaves the task marked
unfinished, and every step that ended and was exported before the crash keeps all its rows (each batch is one
transaction).

Export runs on the processor's thread; a batch that fails is logged and reported as a failure, never raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from agentroute import _telemetry_attrs as A
from agentroute.store.engine import ensure_schema, get_engine, upsert
from agentroute.store.models import CallRow, DecisionRow, LedgerRow, RawJSON, StepRow, TaskRow, table

log = logging.getLogger("agentroute.store")


def _json(value: Any) -> Any:
    """A JSON attribute for a JSON column: written as is (it was encoded once, on the span)."""
    if value is None:
        return None
    return RawJSON(value) if isinstance(value, str) else value


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def task_row(span: ReadableSpan) -> dict[str, Any]:
    """The ``agentroute_tasks`` row of a task span (a start snapshot has no end time: status ``running``)."""
    a: Mapping[str, Any] = span.attributes or {}
    ended = span.end_time is not None
    ctx = span.context
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
        "spent_usd": a.get(A.BUDGET_SPENT + "usd_exact"),
        "spent_tokens": a.get(A.BUDGET_SPENT + "tokens"),
        "spent_steps": a.get(A.BUDGET_SPENT + "steps"),
        "spent_seconds": a.get(A.BUDGET_SPENT + "seconds"),
        "quality": a.get(A.TASK_QUALITY),
        "steps": a.get(A.TASK_STEPS),
        "decisions": a.get(A.TASK_DECISIONS),
        "features": _json(a.get(A.TASK_FEATURES)),
        "input": _json(a.get(A.TASK_INPUT)),
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
    """The ``agentroute_decisions`` row of a ``route`` span."""
    a: Mapping[str, Any] = span.attributes or {}
    masked_ids = list(a.get(A.ROUTE_MASKED, ()))
    reasons = list(a.get(A.ROUTE_MASKED_REASONS, ()))
    return {
        "task_id": str(a.get(A.TASK_ID, "")),
        "idx": int(a.get(A.ROUTE_INDEX, 0)),
        "kind": str(a.get(A.ROUTE_KIND, "")),
        "point": str(a.get(A.ROUTE_POINT, "")),
        "node": str(a.get(A.GRAPH_NODE, "")),
        "step": int(a.get(A.STEP_INDEX, 0)),
        "chosen": str(a.get(A.ROUTE_CHOSEN, "")),
        "reason": str(a.get(A.ROUTE_REASON, "")),
        "policy": str(a.get(A.POLICY_NAME, "")),
        "policy_version": str(a.get(A.POLICY_VERSION, "")),
        "weights_hash": a.get(A.POLICY_WEIGHTS_HASH),
        "explored": bool(a.get(A.ROUTE_EXPLORED, False)),
        "propensity": float(a.get(A.ROUTE_PROPENSITY, 0.0)),
        "candidates": list(a.get(A.ROUTE_CANDIDATES, ())),
        "probabilities": [float(p) for p in a.get(A.ROUTE_PROBABILITIES, ())],
        "scores": _json(a.get(A.ROUTE_SCORES)),
        "candidate_details": _json(a.get(A.ROUTE_CANDIDATE_DETAILS)),
        "masked": [{"id": i, "reason": r} for i, r in zip(masked_ids, reasons, strict=False)],
        "budget_before": _json(a.get(A.BUDGET_BEFORE)),
        "reservation": _json(a.get(A.BUDGET_RESERVATION)),
        "budget_after": _json(a.get(A.BUDGET_AFTER)),
        "cost_usd": a.get(A.COST_USD_EXACT),
        "tokens": int(a.get(A.USAGE_TOKENS, 0)),
        "quality": a.get(A.ROUTE_QUALITY),
        "evidence": _json(a.get(A.ROUTE_EVIDENCE)),
        "at_ns": span.end_time or span.start_time or 0,
    }


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
        "input_messages": _json(a.get(A.GEN_AI_INPUT_MESSAGES)),
        "output_messages": _json(a.get(A.GEN_AI_OUTPUT_MESSAGES)),
        "span_id": _hex(span.context.span_id, 16) if span.context is not None else "",
        "started_ns": span.start_time or 0,
        "ended_ns": span.end_time or 0,
    }


def ledger_rows(span: ReadableSpan, task_id: str, step: int | None) -> list[dict[str, Any]]:
    """The ``agentroute_ledger`` rows carried as events of a step span (or of the task span between steps)."""
    rows = []
    for ev in span.events:
        if ev.name != A.LEDGER_EVENT:
            continue
        a: Mapping[str, Any] = ev.attributes or {}
        rows.append({
            "task_id": task_id,
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


class SqlSpanExporter(SpanExporter):
    """Writes agentroute spans as rows of the SQL store (other spans are ignored).

    ``url`` as for :func:`~agentroute.store.engine.get_engine`. The schema is checked (and created) here, at
    configuration time, so a wrong or unreachable database fails loudly before any task runs.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else get_engine(url)
        ensure_schema(self.engine)
        self._closed = False

    def rows(self, spans: Sequence[ReadableSpan]) -> dict[str, list[dict[str, Any]]]:
        """Group the rows that ``spans`` become, by table (oldest first); pure, no I/O."""
        keys = ("start", "task", "step", "decision", "call", "ledger")
        out: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
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

    def _write(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        eng = self.engine
        with eng.begin() as conn:
            if rows["start"]:
                conn.execute(upsert(eng, table(TaskRow)).on_conflict_do_nothing(), rows["start"])
            if rows["task"]:
                ins = upsert(eng, table(TaskRow))
                final = {k: ins.excluded[k] for k in rows["task"][0] if k != "task_id"}
                conn.execute(ins.on_conflict_do_update(index_elements=["task_id"], set_=final), rows["task"])
            for key, model in (("step", StepRow), ("decision", DecisionRow)):
                if rows[key]:
                    conn.execute(upsert(eng, table(model)).on_conflict_do_nothing(), rows[key])
            for key, plain in (("call", CallRow), ("ledger", LedgerRow)):
                if rows[key]:
                    conn.execute(table(plain).insert(), rows[key])

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one batch in one transaction; retry once when the database is busy."""
        if self._closed:
            return SpanExportResult.FAILURE
        rows = self.rows(spans)
        if not any(rows.values()):
            return SpanExportResult.SUCCESS
        for attempt in (1, 2):
            try:
                self._write(rows)
                return SpanExportResult.SUCCESS
            except OperationalError:
                if attempt == 2:
                    log.exception("agentroute: could not write %d spans to the trace store", len(spans))
                else:
                    time.sleep(0.2)
            except Exception:
                log.exception("agentroute: could not write %d spans to the trace store", len(spans))
                break
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Stop accepting batches; on SQLite, fold the write-ahead log into the file so a copy of it is whole."""
        self._closed = True
        if self.engine.dialect.name == "sqlite":
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception:  # a busy reader: the log is folded in later, nothing is lost
                log.debug("agentroute: WAL checkpoint skipped", exc_info=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every batch is written when it is handed over."""
        return True


class SqlSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` that also queues a snapshot of each task span when it starts."""

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


__all__ = [
    "SqlSpanExporter",
    "SqlSpanProcessor",
    "call_row",
    "decision_row",
    "ledger_rows",
    "step_row",
    "task_row",
]
