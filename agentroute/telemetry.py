"""OpenTelemetry spans for every task, step, model call and routing decision.

:class:`OTelHooks` is a :class:`~agentroute.records.RunHooks`: the runtime hands it records, and it builds
spans with the exact start and end times the records carry, on the tracer provider it was given. The tree::

    invoke_workflow {graph}          one per task (INTERNAL); budget limits, final spend, truncation
    ├── route agent                  agent choices happen between steps, so they hang off the task span
    └── invoke_agent {agent}         one per step (INTERNAL)
        ├── route model | memory     the decisions made inside the step
        └── chat {model}             one per model-call attempt (CLIENT): retries and fallbacks each get one

Names follow the GenAI semantic conventions (see :data:`SEMCONV_VERSION`); routing, budgets and cost live
under ``agentroute.*`` (:mod:`agentroute._telemetry_attrs` lists every key). Message content is recorded only
when ``capture_content`` is on (argument, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) and
credentials are scrubbed from every string. Hooks run on the hot path and never do I/O: exporters run behind
batch processors (:func:`configure_tracing`). A hook must never raise into a task; the runtime's ``HookList``
guards that too.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentroute import _telemetry_attrs as A
from agentroute._telemetry_attrs import SCHEMA_URL, SEMCONV_VERSION
from agentroute._telemetry_config import Tracing, capture_content_from_env, configure_tracing
from agentroute._telemetry_redact import redact_mapping, redact_text
from agentroute._telemetry_redact import refresh as refresh_secrets
from agentroute.records import CallRecord, LedgerEntry, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import DecisionRecord

_TRACER_NAME = "agentroute"


@dataclass(slots=True)
class _TaskSpans:
    span: Span
    ctx: otel_context.Context
    steps: dict[int, tuple[Span, otel_context.Context]] = field(default_factory=dict)
    open_steps: list[int] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("agentroute")
    except Exception:  # not installed (running from a checkout)
        return "0"


class OTelHooks(RunHooks):
    """Turns run records into OpenTelemetry spans.

    ``provider`` is the tracer provider to use (default: the global one); :func:`configure_tracing` builds a
    private provider with exporters and returns hooks bound to it. ``capture_content=None`` reads
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
    """

    def __init__(
        self, provider: trace.TracerProvider | None = None, *, capture_content: bool | None = None
    ) -> None:
        refresh_secrets()  # pick up API keys exported since the last configuration
        self.provider = provider if provider is not None else trace.get_tracer_provider()
        self.capture_content = capture_content_from_env() if capture_content is None else capture_content
        self.tracer = self.provider.get_tracer(_TRACER_NAME, _version(), schema_url=SCHEMA_URL)
        self._tasks: dict[str, _TaskSpans] = {}

    # -- helpers
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

    # -- RunHooks
    def on_task_start(self, task: TaskStart) -> None:
        """Open the task span (it ends in :meth:`on_task_end`)."""
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
        ambient = trace.get_current_span().get_span_context()
        span = self.tracer.start_span(
            f"{A.OP_WORKFLOW} {task.graph}",
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            start_time=task.started_ns,
            attributes=attrs,
            links=[trace.Link(ambient)] if ambient.is_valid else None,
        )
        self._tasks[task.task_id] = _TaskSpans(span, trace.set_span_in_context(span))

    def on_step_start(self, step: StepStart) -> None:
        """Open a step span under its task."""
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

    def on_step_end(self, step: StepEnd) -> None:
        """Close the step span with its cost, tokens and error."""
        st = self._task(step.task_id, step.started_ns)
        if step.step not in st.steps:
            self.on_step_start(StepStart(step.task_id, step.step, step.agent, step.started_ns))
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

    def on_model_call(self, call: CallRecord) -> None:
        """One ``chat {model}`` span per attempt, with usage, cost, retry/fallback and error."""
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
            if call.messages is not None:
                attrs[A.GEN_AI_INPUT_MESSAGES] = A.to_json(_input_messages(call.messages))
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

    def on_decision(self, record: DecisionRecord) -> None:
        """One ``route {kind}`` span: candidates, masks, probabilities, choice, reason, policy and budget."""
        # The record arrives once its step settled; it carries the moment of the decision when the runtime
        # stamps one (``decided_ns``), else the span is placed at arrival.
        at = getattr(record, "decided_ns", None) or time.time_ns()
        st = self._task(record.task_id, at)
        parent = st.ctx if record.kind == "agent" else self._step_ctx(st, record.step)
        span = self.tracer.start_span(
            f"{A.OP_ROUTE} {record.kind}",
            context=parent,
            kind=SpanKind.INTERNAL,
            start_time=at,
            attributes=decision_attributes(record),
        )
        span.end(end_time=at)

    def on_ledger(self, entry: LedgerEntry) -> None:
        """A ledger move becomes an event on the open step span (or on the task span between steps)."""
        st = self._tasks.get(entry.task_id)
        if st is None:
            return
        span = st.steps[st.open_steps[-1]][0] if st.open_steps else st.span
        # Events are many (several per step): only the exact USD and the non-zero dimensions are recorded.
        amount = entry.amount
        attrs: dict[str, Any] = {A.LEDGER_OP: entry.op, A.LEDGER_WHAT: entry.what}
        if amount.usd is not None:
            attrs[A.LEDGER_AMOUNT + "usd_exact"] = str(amount.usd)
        if amount.tokens:
            attrs[A.LEDGER_AMOUNT + "tokens"] = amount.tokens
        if amount.steps:
            attrs[A.LEDGER_AMOUNT + "steps"] = amount.steps
        if amount.seconds:
            attrs[A.LEDGER_AMOUNT + "seconds"] = float(amount.seconds)
        span.add_event(A.LEDGER_EVENT, attrs, timestamp=entry.at_ns)

    def on_task_end(self, result: RunResult) -> None:
        """Close the task span with the final spend, status, truncation and quality."""
        end = result.ended_ns or time.time_ns()
        st = self._task(result.task_id, result.started_ns or end)
        for idx in list(st.open_steps):  # steps that never reported their end (the task failed inside them)
            span = st.steps[idx][0]
            span.set_status(Status(StatusCode.ERROR, "unfinished"))
            span.set_attribute(A.ERROR_TYPE, "unfinished")
            span.end(end_time=end)
        status = "error" if result.error is not None else ("truncated" if result.truncated else "completed")
        attrs: dict[str, Any] = {
            A.TASK_STATUS: status,
            A.TASK_TRUNCATED: result.truncated,
            A.TASK_REASON: result.reason,
            A.TASK_STEPS: result.steps,
            A.TASK_DECISIONS: len(result.decisions),
        }
        if result.quality is not None:
            attrs[A.TASK_QUALITY] = float(result.quality)
        A.budget_attrs(attrs, A.BUDGET_SPENT, result.spent.as_dict())
        if result.error is not None:
            attrs[A.ERROR_TYPE] = type(result.error).__name__
            message = A.error_text(str(result.error))
            if message:
                attrs[A.ERROR_MESSAGE] = message
            st.span.set_status(Status(StatusCode.ERROR, type(result.error).__name__))
        st.span.set_attributes(attrs)
        st.span.end(end_time=end)
        self._tasks.pop(result.task_id, None)

    def flush(self) -> None:
        """Export what the batch processors hold (blocks until written; call it at exit, not per step)."""
        force = getattr(self.provider, "force_flush", None)
        if callable(force):
            force()


def decision_attributes(record: DecisionRecord) -> dict[str, Any]:
    """The attributes of a ``route`` span (public so other exporters and tests can reuse the encoding)."""
    ids = [c.id for c in record.candidates]
    evidence = dict(record.evidence)
    weights_hash = evidence.pop("weights_hash", None)
    attrs: dict[str, Any] = {
        A.RECORD: "decision",
        A.TASK_ID: record.task_id,
        A.ROUTE_INDEX: record.index,
        A.ROUTE_KIND: record.kind,
        A.ROUTE_POINT: record.point,
        A.GRAPH_NODE: record.node,
        A.STEP_INDEX: record.step,
        A.ROUTE_CANDIDATES: ids,
        A.ROUTE_PROBABILITIES: [float(record.probabilities.get(i, 0.0)) for i in ids],
        A.ROUTE_SCORES: A.to_json({k: float(v) for k, v in record.scores.items()}, redact=False),
        A.ROUTE_CANDIDATE_DETAILS: A.to_json([_candidate(c) for c in record.candidates], redact=False),
        A.ROUTE_CHOSEN: record.chosen,
        A.ROUTE_REASON: redact_text(record.reason),
        A.ROUTE_PROPENSITY: record.propensity,
        A.ROUTE_EXPLORED: record.explored,
        A.POLICY_NAME: record.policy,
        A.POLICY_VERSION: record.policy_version,
        A.BUDGET_BEFORE: A.to_json(record.budget_before, redact=False),
        A.USAGE_TOKENS: record.tokens,
    }
    if record.masked:
        attrs[A.ROUTE_MASKED] = [m.id for m in record.masked]
        attrs[A.ROUTE_MASKED_REASONS] = [redact_text(m.reason) for m in record.masked]
    if weights_hash is not None:
        attrs[A.POLICY_WEIGHTS_HASH] = str(weights_hash)
    if record.reservation is not None:
        attrs[A.BUDGET_RESERVATION] = A.to_json(record.reservation, redact=False)
    if record.budget_after is not None:
        attrs[A.BUDGET_AFTER] = A.to_json(record.budget_after, redact=False)
    A.money(attrs, record.cost_usd)
    if record.quality is not None:
        attrs[A.ROUTE_QUALITY] = float(record.quality)
    if evidence:
        attrs[A.ROUTE_EVIDENCE] = A.to_json(redact_mapping(evidence), redact=False)  # scrubbed value by value
    return attrs


def _candidate(c: Any) -> dict[str, Any]:
    # Ids, kinds and prices come from the graph's own declarations; only the descriptor holds free-form data.
    d: dict[str, Any] = {"id": c.id, "kind": c.kind, "rank": c.rank}
    for name in ("input_price", "output_price", "cost_estimate"):
        v = getattr(c, name)
        d[name] = None if v is None else str(v)
    d["latency_estimate"] = c.latency_estimate
    if c.descriptor:
        d["descriptor"] = redact_mapping(c.descriptor)
    return d


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


def tracing_disabled() -> bool:
    """True when ``OTEL_SDK_DISABLED`` says so."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


__all__ = [
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "OTelHooks",
    "Tracing",
    "configure_tracing",
    "decision_attributes",
    "tracing_disabled",
]
