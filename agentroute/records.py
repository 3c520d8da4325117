"""Records of a run, and the hooks that receive them.

The runtime emits one record per event of the loop (task start, step start/end, decision, model-call attempt,
ledger entry, task end) to every :class:`RunHooks` it was given. Telemetry (OpenTelemetry spans), the SQL store and
user callbacks are all hooks: the runtime never knows who listens. Hooks must be fast and must not raise; a hook
that raises is logged and skipped so a tracing failure never breaks a task.

Times are ``time.time_ns()`` wall-clock nanoseconds, so spans can be built after the fact with exact bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from agentroute.budget import Budget, Spend, Violation
from agentroute.routing import DecisionRecord
from agentroute.routing import record as _keys

log = logging.getLogger("agentroute")

# -- span attribute keys of these records (telemetry writes them, the store reads them back; a decision's keys live
# with DecisionRecord in agentroute.routing.record). Where the OpenTelemetry GenAI semantic conventions name a value,
# theirs is used; routing, budgets and cost live under ``agentroute.*``.
# GenAI semantic conventions (v1.41.0)
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"

# agentroute.*
TASK_STATUS = "agentroute.task.status"
TASK_TRUNCATED = "agentroute.task.truncated"
TASK_REASON = "agentroute.task.reason"
TASK_VIOLATIONS = "agentroute.task.violations"
"""JSON list of the task's budget violations (dimension, limit, spent, cause, ledger); only when there are some."""
TASK_QUALITY = "agentroute.task.quality"
TASK_STEPS = "agentroute.task.steps"
TASK_DECISIONS = "agentroute.task.decisions"
TASK_FEATURES = "agentroute.task.features"
TASK_INPUT = "agentroute.task.input"
"""The task's input state as JSON: content, so only when capture is on."""
GRAPH_NAME = "agentroute.graph.name"
BUDGET_SHARED = "agentroute.budget.shared"
BUDGET_LIMIT = "agentroute.budget.limit."  # + usd | tokens | steps | seconds
BUDGET_SPENT = "agentroute.budget.spent."  # + usd | tokens | steps | seconds
ERROR_MESSAGE = "agentroute.error.message"

TIER = "agentroute.tier"
CALL_ATTEMPT = "agentroute.call.attempt"
CALL_FALLBACK = "agentroute.call.fallback"
CALL_BILLING = "agentroute.call.billing"
"""What the call was charged on: ``reported`` usage, or its ``worst_case`` (see :attr:`CallRecord.billing`)."""
CALL_TIMEOUT = "agentroute.call.timeout"
LEDGER_EVENT = "agentroute.ledger"
LEDGER_OP = "agentroute.ledger.op"
LEDGER_WHAT = "agentroute.ledger.what"
LEDGER_AMOUNT = "agentroute.ledger.amount."  # + usd | tokens | steps | seconds
# shared with the decision record
RECORD = _keys.RECORD
TASK_ID = _keys.TASK_ID
GRAPH_NODE = _keys.GRAPH_NODE
STEP_INDEX = _keys.STEP_INDEX
POLICY_NAME = _keys.POLICY_NAME
POLICY_VERSION = _keys.POLICY_VERSION
COST_USD = _keys.COST_USD
COST_USD_EXACT = _keys.COST_USD_EXACT
USAGE_TOKENS = _keys.USAGE_TOKENS


@dataclass(frozen=True, slots=True)
class TaskStart:
    """A task began. ``inputs`` is the input state (hooks must not record content unless asked to)."""

    task_id: str
    graph: str
    policy: str
    policy_version: str
    limits: Budget
    shared: str | None
    inputs: Mapping[str, Any]
    started_ns: int
    features: Mapping[str, Any] = field(default_factory=dict)
    """Features the caller passed to ``run(features=...)`` (the category is among them when given)."""


@dataclass(frozen=True, slots=True)
class StepStart:
    """An agent execution began (``step`` counts from 0 within the task)."""

    task_id: str
    step: int
    agent: str
    started_ns: int


@dataclass(frozen=True, slots=True)
class StepEnd:
    """An agent execution ended; ``error`` names the exception type when it failed."""

    task_id: str
    step: int
    agent: str
    started_ns: int
    ended_ns: int
    cost_usd: Decimal | None
    tokens: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One attempt of a model call (retries and fallbacks each get their own record)."""

    task_id: str
    step: int
    agent: str
    tier: str
    model: str
    provider: str
    attempt: int
    """1 for the first try of a tier, 2.. for retries."""
    fallback: bool
    """True when this tier was tried because another one failed."""
    max_tokens: int
    timeout: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    started_ns: int
    ended_ns: int
    response_model: str | None = None
    error_type: str | None = None
    error: str | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    """Message content: only set when content capture was asked for."""
    completion: str | None = None
    """Response text: only set when content capture was asked for."""
    billing: str = "reported"
    """What the attempt was charged on: ``"reported"`` usage, ``"worst_case: <why>"`` (usage missing, negative or
    implausible; a failed or cancelled attempt) or ``"none"`` (refused before it ran). ``input_tokens`` and
    ``output_tokens`` are what was charged."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One move on a task's ledger: a reservation, its commit, or its release."""

    task_id: str
    op: Literal["reserve", "commit", "release"]
    what: str
    amount: Spend
    at_ns: int


@dataclass(slots=True)
class RunResult:
    """What a run returns: final (or partial) state, spend, decisions, and whether and why it stopped early."""

    task_id: str
    state: dict[str, Any]
    spent: Spend
    limits: Budget
    truncated: bool
    reason: str
    """``"completed"``, or the cause of truncation (for example ``"budget:usd"``, ``"budget:steps"``)."""
    decisions: list[DecisionRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    steps: int = 0
    quality: float | None = None
    """The task's quality in [0, 1] when a scorer or the simulated provider could tell."""
    error: BaseException | None = None
    started_ns: int = 0
    ended_ns: int = 0
    violations: list[Violation] = field(default_factory=list)
    """Every commit that broke its worst case (spent past its reservation on a limited dimension, or an unknown
    cost under a USD limit): charged in full all the same. Non-empty means :attr:`status` ``"overrun"``."""

    @property
    def completed(self) -> bool:
        """True when the run reached END without truncation, overrun or error."""
        return not self.truncated and self.error is None and not self.violations

    @property
    def status(self) -> str:
        """``"completed"``, ``"truncated"``, ``"overrun"`` (see :attr:`violations`) or ``"error"``."""
        if self.error is not None:
            return "error"
        if self.violations:
            return "overrun"
        return "truncated" if self.truncated else "completed"

    def summary(self) -> dict[str, Any]:
        """Plain values for logs, JSON and tables."""
        return {
            "task_id": self.task_id,
            "truncated": self.truncated,
            "reason": self.reason,
            "spent": self.spent.as_dict(),
            "limits": self.limits.as_dict(),
            "steps": self.steps,
            "decisions": len(self.decisions),
            "quality": self.quality,
            "status": self.status,
            "violations": [v.as_dict() for v in self.violations],
        }


@dataclass(frozen=True)
class FlushReport:
    """What a flush left undone: rows still spooled (the database is down), rows and spans dropped for good.

    True when nothing is pending and nothing was dropped.
    """

    pending_rows: int = 0
    dropped_rows: int = 0
    dropped_spans: int = 0
    finished: bool = True
    """False when some exporter did not finish within the timeout."""

    def __bool__(self) -> bool:
        return self.finished and not (self.pending_rows or self.dropped_rows or self.dropped_spans)

    def __add__(self, other: FlushReport) -> FlushReport:
        return FlushReport(self.pending_rows + other.pending_rows, self.dropped_rows + other.dropped_rows,
                           self.dropped_spans + other.dropped_spans, self.finished and other.finished)


class RunHooks:
    """Receives the records of every run. Subclass and override what you need; every method defaults to a no-op."""

    def on_task_start(self, task: TaskStart) -> None:
        """A task began."""

    def on_step_start(self, step: StepStart) -> None:
        """An agent execution began."""

    def on_decision(self, record: DecisionRecord) -> None:
        """A routing decision was made and its step settled (``budget_after`` is filled)."""

    def on_model_call(self, call: CallRecord) -> None:
        """A model-call attempt ended (successfully or not)."""

    def on_ledger(self, entry: LedgerEntry) -> None:
        """A reservation was made, committed or released."""

    def on_step_end(self, step: StepEnd) -> None:
        """An agent execution ended."""

    def on_task_end(self, result: RunResult) -> None:
        """A task ended: completed, truncated, or failed (``result.error``)."""

    def flush(self) -> None:
        """Write out anything buffered (called by ``App.flush`` and at exit)."""


class HookList(RunHooks):
    """Fans records out to several hooks; a hook that raises is logged and skipped, never breaking a task."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: Sequence[RunHooks]) -> None:
        self.hooks = tuple(hooks)

    def _each(self, method: str, arg: Any) -> None:
        for h in self.hooks:
            try:
                getattr(h, method)(arg)
            except Exception:  # a tracing failure must never break a task
                log.exception("agentroute hook %s.%s failed", type(h).__name__, method)

    def on_task_start(self, task: TaskStart) -> None:  # noqa: D102
        self._each("on_task_start", task)

    def on_step_start(self, step: StepStart) -> None:  # noqa: D102
        self._each("on_step_start", step)

    def on_decision(self, record: DecisionRecord) -> None:  # noqa: D102
        self._each("on_decision", record)

    def on_model_call(self, call: CallRecord) -> None:  # noqa: D102
        self._each("on_model_call", call)

    def on_ledger(self, entry: LedgerEntry) -> None:  # noqa: D102
        self._each("on_ledger", entry)

    def on_step_end(self, step: StepEnd) -> None:  # noqa: D102
        self._each("on_step_end", step)

    def on_task_end(self, result: RunResult) -> None:  # noqa: D102
        self._each("on_task_end", result)

    def flush(self) -> None:  # noqa: D102
        for h in self.hooks:
            try:
                h.flush()
            except Exception:
                log.exception("agentroute hook %s.flush failed", type(h).__name__)


__all__ = [
    "CallRecord",
    "FlushReport",
    "HookList",
    "LedgerEntry",
    "RunHooks",
    "RunResult",
    "StepEnd",
    "StepStart",
    "TaskStart",
]
