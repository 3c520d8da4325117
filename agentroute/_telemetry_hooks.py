"""OpenTelemetry spans for every task, step, model call and routing decision, built off the task's thread.

:class:`OTelHooks` is a :class:`~agentroute.records.RunHooks`: the runtime hands it records, and it builds spans
with the exact start and end times the records carry, on the tracer provider it was given. The tree::

    invoke_workflow {graph}          one per task (INTERNAL); budget limits, final spend, truncation
    ├── route agent                  agent choices happen between steps, so they hang off the task span
    └── invoke_agent {agent}         one per step (INTERNAL)
        ├── route model | memory     the decisions made inside the step
        └── chat {model}             one per model-call attempt (CLIENT): retries and fallbacks each get one

With ``background=True`` (what :func:`~agentroute.telemetry.configure_tracing` builds) a hook only snapshots the
few values that could change later (the caller's current span, the clock, mutable amounts) and queues the record;
one daemon thread per hooks object builds the spans, attributes included, in the order the records came. A task
then pays a queue put per record, not the span SDK, the JSON encoding and the redaction. ``flush()`` drains that
queue before it flushes the exporters. A hook must never raise into a task; the runtime's ``HookList`` guards
that too.

Everything that leaves the process goes through :mod:`agentroute._telemetry_redact`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentroute import _telemetry_attrs as A
from agentroute._telemetry_attrs import SCHEMA_URL
from agentroute._telemetry_redact import redact_mapping, redact_text, redact_value
from agentroute._telemetry_redact import refresh as refresh_secrets
from agentroute.records import CallRecord, LedgerEntry, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import DecisionRecord

log = logging.getLogger("agentroute.telemetry")
_TRACER_NAME = "agentroute"


@dataclass(slots=True)
class _TaskSpans:
    span: Span
    ctx: otel_context.Context
    graph: str = ""
    steps: dict[int, tuple[Span, otel_context.Context]] = field(default_factory=dict)
    open_steps: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Move:
    """A ledger entry, its amount copied when it happened (a ``Spend`` is mutable)."""

    task_id: str
    op: str
    what: str
    usd: Decimal | None
    tokens: int
    steps: int
    seconds: float
    at_ns: int


@dataclass(frozen=True, slots=True)
class _End:
    """What a task span needs of a :class:`RunResult`, read when the task ended (the result lives on)."""

    task_id: str
    started_ns: int
    ended_ns: int
    status: str
    truncated: bool
    reason: str
    steps: int
    decisions: int
    quality: float | None
    spent: Mapping[str, Any]
    error_type: str | None
    error: str | None
    violations: tuple[Mapping[str, Any], ...] = ()


@functools.lru_cache(maxsize=1)
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("agentroute")
    except Exception:  # not installed (running from a checkout)
        return "0"


class _SpanBuilder:
    """Builds the span tree from records; not thread-safe per task (one thread feeds a task's records)."""

    def __init__(self, provider: trace.TracerProvider, capture_content: bool) -> None:
        self.provider = provider
        self.capture_content = capture_content
        self.tracer = provider.get_tracer(_TRACER_NAME, _version(), schema_url=SCHEMA_URL)
        self._tasks: dict[str, _TaskSpans] = {}

    def _task(self, task_id: str, at_ns: int) -> _TaskSpans:
        st = self._tasks.get(task_id)
        if st is None:  # records of a task whose start we did not see: give them a root of their own
            span = self.tracer.start_span(
                f"{A.OP_WORKFLOW} ?",
                start_time=at_ns,
                context=otel_context.Context(),
                attributes={A.RECORD: "task", A.GEN_AI_OPERATION_NAME: A.OP_WORKFLOW, A.TASK_ID: task_id},
            )
            st = self._tasks[task_id] = _TaskSpans(span, trace.set_span_in_context(span))
        return st

    def _step_ctx(self, st: _TaskSpans, step: int) -> otel_context.Context:
        got = st.steps.get(step)
        return got[1] if got is not None else st.ctx

    def task_start(self, task: TaskStart, ambient: trace.SpanContext | None) -> None:
        attrs: dict[str, Any] = {
            A.RECORD: "task",
            A.GEN_AI_OPERATION_NAME: A.OP_WORKFLOW,
            A.GEN_AI_WORKFLOW_NAME: task.graph,
            A.GRAPH_NAME: task.graph,
            A.TASK_ID: task.task_id,
            A.TASK_STATUS: "running",
            A.POLICY_NAME: task.policy,
            A.POLICY_VERSION: task.policy_version,
        }
        A.budget_attrs(attrs, A.BUDGET_LIMIT, task.limits.as_dict())
        if task.shared:
            attrs[A.BUDGET_SHARED] = task.shared
        features: dict[str, Any] = A.scalar_features(task.inputs)
        extra = getattr(task, "features", None)
        if isinstance(extra, Mapping):
            features.update(A.scalar_features(extra))
        if features:
            attrs[A.TASK_FEATURES] = A.to_json(features)
        if self.capture_content:
            attrs[A.TASK_INPUT] = A.to_json(redact_mapping(dict(task.inputs)))
        # A task is the root of its own trace, always sampled, so the audit trail never depends on a caller's
        # sampling decision; a span active in the caller is linked instead of becoming the parent.
        span = self.tracer.start_span(
            f"{A.OP_WORKFLOW} {task.graph}",
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            start_time=task.started_ns,
            attributes=attrs,
            links=[trace.Link(ambient)] if ambient is not None and ambient.is_valid else None,
        )
        self._tasks[task.task_id] = _TaskSpans(span, trace.set_span_in_context(span), task.graph)

    def step_start(self, step: StepStart) -> None:
        st = self._task(step.task_id, step.started_ns)
        span = self.tracer.start_span(
            f"{A.OP_AGENT} {step.agent}",
            context=st.ctx,
            kind=SpanKind.INTERNAL,
            start_time=step.started_ns,
            attributes={
                A.RECORD: "step",
                A.GEN_AI_OPERATION_NAME: A.OP_AGENT,
                A.GEN_AI_AGENT_NAME: step.agent,
                A.GRAPH_NODE: step.agent,
                A.STEP_INDEX: step.step,
                A.TASK_ID: step.task_id,
            },
        )
        st.steps[step.step] = (span, trace.set_span_in_context(span))
        st.open_steps.append(step.step)

    def step_end(self, step: StepEnd) -> None:
        st = self._task(step.task_id, step.started_ns)
        if step.step not in st.steps:
            self.step_start(StepStart(step.task_id, step.step, step.agent, step.started_ns))
        span = st.steps[step.step][0]
        if step.step in st.open_steps:
            st.open_steps.remove(step.step)
        attrs: dict[str, Any] = {A.USAGE_TOKENS: step.tokens}
        A.money(attrs, step.cost_usd)
        if step.error:
            attrs[A.ERROR_TYPE] = step.error
            span.set_status(Status(StatusCode.ERROR, step.error))
        span.set_attributes(attrs)
        span.end(end_time=step.ended_ns)

    def model_call(self, call: CallRecord, messages: Sequence[Mapping[str, Any]] | None) -> None:
        st = self._task(call.task_id, call.started_ns)
        attrs: dict[str, Any] = {
            A.RECORD: "call",
            A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
            A.GEN_AI_PROVIDER_NAME: call.provider,
            A.GEN_AI_REQUEST_MODEL: call.model,
            A.GEN_AI_REQUEST_MAX_TOKENS: call.max_tokens,
            A.GEN_AI_USAGE_INPUT_TOKENS: call.input_tokens,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: call.output_tokens,
            A.TASK_ID: call.task_id,
            A.STEP_INDEX: call.step,
            A.GRAPH_NODE: call.agent,
            A.TIER: call.tier,
            A.CALL_ATTEMPT: call.attempt,
            A.CALL_FALLBACK: call.fallback,
            A.CALL_BILLING: call.billing,
        }
        if call.response_model:
            attrs[A.GEN_AI_RESPONSE_MODEL] = call.response_model
        if call.timeout is not None:
            attrs[A.CALL_TIMEOUT] = float(call.timeout)
        A.money(attrs, call.cost_usd)
        if call.error_type:
            attrs[A.ERROR_TYPE] = call.error_type
        message = A.error_text(call.error)
        if message:
            attrs[A.ERROR_MESSAGE] = message
        if self.capture_content:
            if messages is not None:
                attrs[A.GEN_AI_INPUT_MESSAGES] = A.to_json(_input_messages(messages))
            if call.completion is not None:
                attrs[A.GEN_AI_OUTPUT_MESSAGES] = A.to_json(_output_messages(call.completion))
        span = self.tracer.start_span(
            f"{A.OP_CHAT} {call.model}",
            context=self._step_ctx(st, call.step),
            kind=SpanKind.CLIENT,
            start_time=call.started_ns,
            attributes=attrs,
        )
        if call.error_type or call.error:
            span.set_status(Status(StatusCode.ERROR, call.error_type or "error"))
        span.end(end_time=call.ended_ns)

    def decision(self, record: DecisionRecord, at: int) -> None:
        st = self._task(record.task_id, at)
        parent = st.ctx if record.kind == "agent" else self._step_ctx(st, record.step)
        attrs = decision_attributes(record)
        if st.graph:
            attrs[A.GRAPH_NAME] = st.graph
        span = self.tracer.start_span(
            f"{A.OP_ROUTE} {record.kind}", context=parent, kind=SpanKind.INTERNAL, start_time=at, attributes=attrs
        )
        span.end(end_time=at)

    def ledger(self, m: _Move) -> None:
        st = self._tasks.get(m.task_id)
        if st is None:
            return
        span = st.steps[st.open_steps[-1]][0] if st.open_steps else st.span
        # Events are many (several per step): only the exact USD and the non-zero dimensions are recorded.
        attrs: dict[str, Any] = {A.LEDGER_OP: m.op, A.LEDGER_WHAT: m.what}
        if m.usd is not None:
            attrs[A.LEDGER_AMOUNT + "usd_exact"] = str(m.usd)
        if m.tokens:
            attrs[A.LEDGER_AMOUNT + "tokens"] = m.tokens
        if m.steps:
            attrs[A.LEDGER_AMOUNT + "steps"] = m.steps
        if m.seconds:
            attrs[A.LEDGER_AMOUNT + "seconds"] = float(m.seconds)
        span.add_event(A.LEDGER_EVENT, attrs, timestamp=m.at_ns)

    def task_end(self, e: _End) -> None:
        st = self._task(e.task_id, e.started_ns or e.ended_ns)
        for idx in list(st.open_steps):  # steps that never reported their end (the task failed inside them)
            span = st.steps[idx][0]
            span.set_status(Status(StatusCode.ERROR, "unfinished"))
            span.set_attribute(A.ERROR_TYPE, "unfinished")
            span.end(end_time=e.ended_ns)
        attrs: dict[str, Any] = {
            A.TASK_STATUS: e.status,
            A.TASK_TRUNCATED: e.truncated,
            A.TASK_REASON: e.reason,
            A.TASK_STEPS: e.steps,
            A.TASK_DECISIONS: e.decisions,
        }
        if e.quality is not None:
            attrs[A.TASK_QUALITY] = float(e.quality)
        A.budget_attrs(attrs, A.BUDGET_SPENT, e.spent)
        if e.violations:  # a provider spent past a reservation: charged in full, and said here
            attrs[A.TASK_VIOLATIONS] = A.to_json(list(e.violations))
        if e.error_type is not None:
            attrs[A.ERROR_TYPE] = e.error_type
            message = A.error_text(e.error)
            if message:
                attrs[A.ERROR_MESSAGE] = message
            st.span.set_status(Status(StatusCode.ERROR, e.error_type))
        st.span.set_attributes(attrs)
        st.span.end(end_time=e.ended_ns)
        self._tasks.pop(e.task_id, None)


def _end_of(result: RunResult) -> _End:
    status = "error" if result.error is not None else ("truncated" if result.truncated else "completed")
    status = getattr(result, "status", None) or status  # a runtime that names more outcomes (overrun) wins
    return _End(
        task_id=result.task_id,
        started_ns=result.started_ns,
        ended_ns=result.ended_ns or time.time_ns(),
        status=str(status),
        truncated=bool(result.truncated),
        reason=str(result.reason),
        steps=int(result.steps),
        decisions=len(result.decisions),
        quality=None if result.quality is None else float(result.quality),
        spent=result.spent.as_dict(),
        error_type=None if result.error is None else type(result.error).__name__,
        error=None if result.error is None else str(result.error),
        violations=tuple(v.as_dict() for v in getattr(result, "violations", ())),
    )


_STOP = object()


def _reset_after_fork(ref: weakref.ref[OTelHooks]) -> None:
    hooks = ref()
    if hooks is not None:
        hooks._queue = queue.SimpleQueue()
        hooks._thread = None
        hooks._lock = threading.Lock()
        hooks._builder._tasks.clear()


def _close_at_exit(ref: weakref.ref[OTelHooks]) -> None:
    # Registered after the tracer provider's own exit hook, so it runs first: spans still queued here are built
    # before the provider flushes its exporters.
    hooks = ref()
    if hooks is not None:
        hooks.close()


def capture_content_from_env() -> bool:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, the standard switch for message content."""
    value = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def tracing_disabled() -> bool:
    """True when ``OTEL_SDK_DISABLED`` says so."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


class OTelHooks(RunHooks):
    """Turns run records into OpenTelemetry spans.

    ``provider`` is the tracer provider to use (default: the global one); :func:`configure_tracing` builds a
    private provider with exporters and returns hooks bound to it. ``capture_content=None`` reads
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``. ``background=True`` builds the spans on a daemon
    thread of these hooks (see the module docstring); call :meth:`flush` before reading what was exported.
    """

    def __init__(
        self,
        provider: trace.TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
        background: bool = False,
    ) -> None:
        refresh_secrets()  # pick up API keys exported since the last configuration
        self.provider = provider if provider is not None else trace.get_tracer_provider()
        self.capture_content = capture_content_from_env() if capture_content is None else capture_content
        self._builder = _SpanBuilder(self.provider, self.capture_content)
        self.tracer = self._builder.tracer
        self.background = background
        self.cpu = 0.0
        """CPU seconds the background thread spent building spans (what tracing costs off the task's thread)."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if background:
            ref = weakref.ref(self)
            atexit.register(_close_at_exit, ref)
            if hasattr(os, "register_at_fork"):  # a forked child starts with an empty queue and its own thread
                os.register_at_fork(after_in_child=functools.partial(_reset_after_fork, ref))

    # -- the background thread
    def _put(self, item: tuple[Any, ...]) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                t = threading.Thread(target=self._drain, name="agentroute-spans", daemon=True)
                t.start()
                self._thread = t

    def _drain(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            t0 = time.thread_time()
            try:
                while True:
                    if item is _STOP:
                        return
                    if isinstance(item, threading.Event):
                        item.set()
                    else:
                        fn, *args = item
                        try:
                            fn(*args)
                        except Exception:  # a span that cannot be built must not stop the others
                            log.exception("agentroute: building a span failed")
                    try:
                        item = q.get_nowait()
                    except queue.Empty:
                        break
            finally:
                self.cpu += time.thread_time() - t0

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait until every record queued so far became a span (True when done within ``timeout``)."""
        if self._thread is None or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Build what is queued, then stop the background thread (idempotent)."""
        t = self._thread
        if t is not None and t.is_alive():
            self._queue.put(_STOP)
            t.join(30.0)

    # -- RunHooks
    def on_task_start(self, task: TaskStart) -> None:
        """Open the task span (it ends in :meth:`on_task_end`)."""
        ambient = trace.get_current_span().get_span_context()
        if self.background:
            self._put((self._builder.task_start, task, ambient))
        else:
            self._builder.task_start(task, ambient)

    def on_step_start(self, step: StepStart) -> None:
        """Open a step span under its task."""
        if self.background:
            self._put((self._builder.step_start, step))
        else:
            self._builder.step_start(step)

    def on_step_end(self, step: StepEnd) -> None:
        """Close the step span with its cost, tokens and error."""
        if self.background:
            self._put((self._builder.step_end, step))
        else:
            self._builder.step_end(step)

    def on_model_call(self, call: CallRecord) -> None:
        """One ``chat {model}`` span per attempt, with usage, cost, retry/fallback and error."""
        messages = call.messages
        if messages is not None and self.capture_content:
            messages = [dict(m) for m in messages]  # the conversation grows after this call
        if self.background:
            self._put((self._builder.model_call, call, messages))
        else:
            self._builder.model_call(call, messages)

    def on_decision(self, record: DecisionRecord) -> None:
        """One ``route {kind}`` span: candidates, masks, probabilities, choice, reason, policy and budget."""
        # The record arrives once its step settled; it carries the moment of the decision when the runtime
        # stamps one (``decided_ns``), else the span is placed at arrival.
        at = record.decided_ns or time.time_ns()
        if self.background:
            self._put((self._builder.decision, record, at))
        else:
            self._builder.decision(record, at)

    def on_ledger(self, entry: LedgerEntry) -> None:
        """A ledger move becomes an event on the open step span (or on the task span between steps)."""
        a = entry.amount
        m = _Move(entry.task_id, entry.op, entry.what, a.usd, a.tokens, a.steps, a.seconds, entry.at_ns)
        if self.background:
            self._put((self._builder.ledger, m))
        else:
            self._builder.ledger(m)

    def on_task_end(self, result: RunResult) -> None:
        """Close the task span with the final spend, status, truncation and quality."""
        if self.background:
            self._put((self._builder.task_end, _end_of(result)))
        else:
            self._builder.task_end(_end_of(result))

    def flush(self) -> None:
        """Build the queued spans and export what the batch processors hold (blocks; call it at exit)."""
        self.drain()
        force = getattr(self.provider, "force_flush", None)
        if callable(force):
            force()


def decision_attributes(record: DecisionRecord) -> dict[str, Any]:
    """The attributes of a ``route`` span: :meth:`DecisionRecord.to_attributes` with credentials scrubbed."""
    return record.to_attributes(redact_value)


def _input_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # The GenAI conventions' message shape: {"role": ..., "parts": [{"type": "text", "content": ...}]}.
    out = []
    for m in messages:
        content = m.get("content")
        parts = [{"type": "text", "content": content}] if isinstance(content, str) else content
        out.append(redact_mapping({"role": m.get("role", "user"), "parts": parts}))
    return out


def _output_messages(completion: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": [{"type": "text", "content": redact_text(completion)}]}]


__all__ = ["OTelHooks", "capture_content_from_env", "decision_attributes", "tracing_disabled"]
