"""One task in flight: :class:`TaskRun` holds its per-task state and drives its agent steps through the kernel.

The :class:`~agentroute.runtime.App` owns configuration and hands every task the same frozen :class:`RunConfig`; a
``TaskRun`` owns everything that belongs to one task (its ledger, its :class:`~agentroute.routing.TaskRouter`, state,
the step in progress, calls, qualities, why it stopped). Agent choices go through the kernel here
(:meth:`TaskRun.route_agent`); model tiers in :mod:`agentroute._calls`, memory tiers and ``ctx.route`` through the
same :class:`~agentroute.routing.TaskRouter` from :mod:`agentroute.context`. Nothing here imports the App or the graph
builder.

This module must never let a task spend past a limit: an agent's step is reserved before it runs and committed
after, and a step that never ran is released.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentroute import _llm_params
from agentroute._spec import END, AgentSpec
from agentroute.budget import ZERO, Ledger, MemoryBackend, Reservation, Spend, Unaffordable, Violation
from agentroute.errors import AgentError, ConfigError, PolicyError, RunError
from agentroute.llm import ModelTier
from agentroute.records import CallRecord, LedgerEntry, RunHooks, RunResult, StepEnd, StepStart
from agentroute.routing import (
    Candidate,
    Choice,
    DecisionRecord,
    Exhausted,
    Option,
    Policy,
    TaskInfo,
    TaskOutcome,
    TaskRouter,
)

Prices = tuple[Decimal, Decimal]
META = "__agentroute__"
"""The state key where a task carries what its finished steps spent and decided, so that a checkpointed task resumes
with its spend (:meth:`TaskRun.carry` writes it at the end of every step; agents and results never see it)."""


def visible(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` without the runtime's own key."""
    return {k: v for k, v in state.items() if k != META}


class Stop(Exhausted):
    """Internal: nothing affordable is left; the task ends truncated at the next edge (never raised to users)."""


@dataclass(slots=True)
class Reply:
    """What ``ctx.complete`` returns: the text and everything the call cost."""

    text: str
    tier: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    latency: float
    quality: float | None = None
    finish_reason: str | None = None
    attempts: int = 1
    response: Any = None


@dataclass(frozen=True, slots=True)
class TierCall:
    """What a call on one tier needs that never changes, read once when the App is compiled."""

    tier: ModelTier
    rank: int
    prices: Prices | None
    choices: int
    """How many answers one call may generate (``n``, ``best_of``): the worst case multiplies the answer by it."""
    tools: bool
    """Whether the tier sends tool definitions or a response format with every call (counted as input)."""


def tier_calls(tiers: Sequence[ModelTier], prices: Mapping[str, Prices | None],
               tier_rank: Mapping[str, int]) -> tuple[TierCall, ...]:
    """``tiers`` as :class:`TierCall` s, cheapest first."""
    ranked = sorted(tiers, key=lambda t: tier_rank[t.name])
    return tuple(TierCall(t, tier_rank[t.name], prices[t.name], t.choices, bool(_llm_params.input_parts(t.params)))
                 for t in ranked)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What every task of an App reads: the App's configuration, frozen (the App replaces it when a knob changes)."""

    graph: str
    provider: Any
    hooks: RunHooks | None
    min_answer_tokens: int
    max_retries: int
    retry_backoff: float
    input_margin: tuple[float, int]
    """Input tokens reserved beyond the tokenizer's count: a fraction and a constant (providers count differently)."""
    contention_wait: float
    """Seconds a call may wait for other tasks' reservations on a shared budget to settle before truncating."""
    capture_content: bool
    scorer: Callable[[dict[str, Any]], float] | None
    prices: Mapping[str, Prices | None]
    tier_rank: Mapping[str, int]
    sorted_tiers: Mapping[str, tuple[ModelTier, ...]]
    """Each agent's tiers, cheapest first."""
    tier_calls: Mapping[str, tuple[TierCall, ...]]
    """Each agent's tiers as the model routing point reads them, cheapest first."""
    agent_options: Mapping[str, tuple[Option, ...]]
    """The options of each agent routing point (built once: agent choices never change)."""
    shadows: tuple[Policy, ...] = ()
    """Policies asked beside the policy at every decision, never acted on (their choices are recorded)."""
    charge_failed: str = "worst_case"
    """What a failed or cancelled model call is charged: ``"worst_case"`` (billed) or ``"reported"`` (nothing)."""
    checkpointed: bool = True
    """Whether the graph saves checkpoints: only then does every step write :meth:`TaskRun.carry` into the state."""


@dataclass(slots=True)
class _Step:
    """The step of the next agent, held before it runs: by its routing decision, or by a fixed edge."""

    choice: Choice | None
    reservation: Reservation | None


class TaskRun:
    """One task in flight (see the module docstring). Created by :class:`~agentroute.runtime.App` for each run."""

    def __init__(self, cfg: RunConfig, ledger: Ledger, policy: Policy, inputs: Mapping[str, Any], text: str, *,
                 task_id: str | None, category: str | None, features: Mapping[str, Any] | None, entry: str) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.id = task_id or uuid.uuid4().hex
        self.hooks = cfg.hooks
        self.router = TaskRouter(ledger, policy, TaskInfo(id=self.id, text=text, category=category,
                                                           features=dict(features or {})),
                                 recorder=self if cfg.hooks is not None else None, node=entry,
                                 shadows=cfg.shadows)
        self.state: dict[str, Any] = dict(inputs)
        self.calls: list[CallRecord] = []
        self.steps = 0
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.qualities: list[float] = []
        self.step_cost: Decimal | None = ZERO
        self.step_tokens = 0
        self.step_started_ns = 0
        self.started_ns = time.time_ns()
        self.labels: dict[str, str] = {}
        self.suggested: dict[str, str] = {}
        """The graph's own choice at a routing point, when it has one (a wrapped LangGraph path function): offered
        to the policy as that point's declared default for the next decision there."""
        self._next: _Step | None = None

    @property
    def policy(self) -> Policy:
        """The task's policy (every optional capability filled in)."""
        assert self.router.policy is not None
        return self.router.policy

    # -- the recorder the kernel reports to -------------------------------------------------------------------
    def on_decision(self, record: DecisionRecord) -> None:
        """Forward a settled decision to the hooks."""
        if self.hooks is not None:
            self.hooks.on_decision(record)

    def on_ledger(self, op: str, what: str, amount: Spend) -> None:
        """Forward a ledger move to the hooks."""
        if self.hooks is not None:
            self.hooks.on_ledger(LedgerEntry(self.id, op, what, amount, time.time_ns()))  # type: ignore[arg-type]

    # -- stopping -------------------------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """End the task at the next edge (the first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stopped(self) -> bool:
        """True once the task must leave the graph (an overrun stops it too)."""
        if self.stop_reason is None and self.ledger.violations:
            self.stop_reason = overrun_reason(self.ledger.violations)
        return self.stop_reason is not None or self.error is not None

    # -- agent routing points -------------------------------------------------------------------------------
    def route_agent(self, src: str) -> str:
        """The routing point after ``src``: which agent runs next (or END); the chosen step is held until it runs."""
        if self.stopped:
            return END
        r = self.router
        options = self.cfg.agent_options[src]
        hint = self.suggested.pop(src, None)
        if hint is not None:
            options = tuple(dataclasses.replace(o, candidate=dataclasses.replace(
                o.candidate, descriptor={**o.candidate.descriptor, "default": o.candidate.id == hint}))
                for o in options)
        choice = r.decide(r.observe("agent", f"route:{src}", options, default=END), reserve=False)
        if choice.stop is not None or choice.chosen in (None, END):
            if choice.stop is not None:
                self.stop(choice.stop)
                choice.close(feedback=False)
            else:
                choice.close(cost=ZERO, tokens=0, latency=0.0)
            return END
        choice.what = f"step:{choice.chosen}"
        if not choice.reserve():
            self.stop(f"budget:{choice.refused}")
            choice.close(feedback=False)
            return END
        self._next = _Step(choice, None)
        return str(choice.chosen)

    # -- one agent step ---------------------------------------------------------------------------------------
    def enter(self, spec: AgentSpec) -> bool:
        """Begin ``spec``'s step: hold it (a fixed edge or the start) and check the time; ``False`` to skip it."""
        if self.stopped:
            return False
        self.router.node, self.router.step = spec.name, self.steps
        if self._next is None:  # the start agent, or a fixed edge: reserve the step here
            try:
                self._next = _Step(None, self.router.reserve(Spend(usd=ZERO, steps=1), f"step:{spec.name}"))
            except Unaffordable as e:
                self.stop(f"budget:{e.dimension}")
                return False
        limit = self.ledger.limits.seconds
        if limit is not None and self.ledger.elapsed() >= limit:
            self._drop_step(record=True)
            self.stop("budget:seconds")
            return False
        self.step_cost, self.step_tokens = ZERO, 0
        self.step_started_ns = time.time_ns()
        if self.hooks is not None:
            self.hooks.on_step_start(StepStart(self.id, self.steps, spec.name, self.step_started_ns))
        return True

    def exit(self, spec: AgentSpec, state: dict[str, Any], update: Any, exc: BaseException | None) -> dict[str, Any]:
        """Commit the step, merge the agent's update, and settle the decision that chose it."""
        step, self._next = self._next, None
        assert step is not None
        if step.choice is not None:
            step.choice.commit(Spend(usd=ZERO, steps=1))
        elif step.reservation is not None:
            self.router.commit(step.reservation, Spend(usd=ZERO, steps=1))
        new_state = state
        error_name = None
        if exc is None:
            if update is not None and not isinstance(update, Mapping):
                exc = ConfigError(f"agent {spec.name!r} returned {type(update).__name__}; return a dict of updates "
                                  "(or None)", name=spec.name)
            else:
                new_state = {**state, **visible(update or {})}
                self.state = visible(new_state) if META in new_state else new_state
        if exc is not None:
            error_name = type(exc).__name__
            if isinstance(exc, Exhausted):
                self.stop(exc.reason)
            elif isinstance(exc, RunError | ConfigError):
                self.error = exc
            elif isinstance(exc, Exception):
                err = AgentError(f"agent {spec.name!r} raised {type(exc).__name__}: {exc}", agent=spec.name)
                err.__cause__ = exc
                self.error = err
            else:
                raise exc
        if self.hooks is not None:
            self.hooks.on_step_end(StepEnd(self.id, self.steps, spec.name, self.step_started_ns, time.time_ns(),
                                           self.step_cost, self.step_tokens, error_name))
        self.steps += 1
        if step.choice is not None:
            step.choice.close(cost=self.step_cost, tokens=self.step_tokens,
                              quality=self.qualities[-1] if self.qualities else None, ok=exc is None,
                              error=error_name, latency=(time.time_ns() - self.step_started_ns) / 1e9)
        if not self.cfg.checkpointed:  # nothing reads the carried spend back without a checkpointer
            return new_state
        return {**new_state, META: self.carry()}

    # -- resuming after a crash ---------------------------------------------------------------------------------
    def carry(self) -> dict[str, Any]:
        """What the finished steps spent and decided, as plain values (saved with the state after every step)."""
        spent = self.ledger.backend.totals()[0]  # the task's own ledger: shared parents keep their own books
        info = self.router.task
        return {
            "v": 1, "steps": self.steps, "decisions": self.router._count,
            "spent": {"known_usd": str(spent.known_usd), "unknown_usd": spent.unknown_usd, "tokens": spent.tokens,
                      "steps": spent.steps},
            "seconds": self.ledger.elapsed(), "limits": self.ledger.limits.as_dict(),
            "history": [list(h) for h in self.router.history],
            "quality": self.qualities[-1] if self.qualities else None,
            "category": info.category, "features": dict(info.features), "labels": dict(self.labels),
        }

    def restore(self, carried: Mapping[str, Any]) -> None:
        """Take up a task where its last finished step left it: its spend, step count, decision count, history."""
        backend = self.ledger.backend
        if not isinstance(backend, MemoryBackend):  # pragma: no cover - the App gives every task one in this process
            raise ConfigError("a resumed task needs its own in-process ledger", name="budget")
        s = carried.get("spent")
        if s:  # nothing before the first finished step
            backend.spent = Spend(Decimal(str(s.get("known_usd") or 0)), int(s.get("tokens") or 0),
                                  int(s.get("steps") or 0), unknown_usd=int(s.get("unknown_usd") or 0))
        self.ledger.started -= float(carried.get("seconds") or 0.0)  # the time already used counts, too
        self.steps = int(carried.get("steps") or 0)
        self.router._count = int(carried.get("decisions") or 0)
        self.router.history = [(str(p), str(c)) for p, c in carried.get("history") or ()]
        if carried.get("quality") is not None:
            self.qualities.append(float(carried["quality"]))
        self.labels = {str(k): str(v) for k, v in (carried.get("labels") or {}).items()}

    def _drop_step(self, *, record: bool) -> None:
        """Free a held step that will never run (keeping the decision that chose it on record)."""
        step, self._next = self._next, None
        if step is None:
            return
        if step.choice is not None:
            step.choice.release()
            if record:
                step.choice.close(feedback=False)
        elif step.reservation is not None:
            self.router.release(step.reservation)

    def charge(self, cost: Decimal | None, tokens: int) -> None:
        """Add a model call's spend to the step in progress (its agent decision is charged the whole step)."""
        self.step_cost = None if cost is None or self.step_cost is None else self.step_cost + cost
        self.step_tokens += tokens

    # -- the end ------------------------------------------------------------------------------------------------
    def finish(self, exc: BaseException | None) -> RunResult:
        """Close the task: free what is held, score it, credit the policy, and build its :class:`RunResult`."""
        self._drop_step(record=True)
        if exc is not None and self.error is None:
            if type(exc).__name__ == "GraphRecursionError":
                self.stop("recursion_limit")
            else:
                self.error = exc
        quality: float | None = None
        if self.cfg.scorer is not None and self.error is None:
            quality = float(self.cfg.scorer(self.state))
        elif self.qualities:
            quality = self.qualities[-1]
        violations = list(self.ledger.violations)
        if violations and self.error is None:  # an overrun names the run's end, whatever else stopped it
            self.stop_reason = overrun_reason(violations)
        truncated = self.stop_reason is not None or self.error is not None
        reason = self.stop_reason or (f"error:{type(self.error).__name__}" if self.error else "completed")
        spent = self.ledger.spent
        decisions = self.router.decisions()
        try:
            self.router.end_task(TaskOutcome(self.id, quality, spent.usd, spent.tokens, self.error is None,
                                             truncated, reason, tuple(decisions)))
        except PolicyError as e:
            if self.error is None:
                self.error, truncated, reason = e, True, f"error:{type(e).__name__}"
        result = RunResult(
            task_id=self.id, state=self.state, spent=spent, limits=self.ledger.limits, truncated=truncated,
            reason=reason, decisions=decisions, calls=self.calls, steps=self.steps, quality=quality,
            error=self.error, started_ns=self.started_ns, ended_ns=time.time_ns(), violations=violations,
        )
        if self.hooks is not None:
            self.hooks.on_task_end(result)
        return result


def overrun_reason(violations: Sequence[Violation]) -> str:
    """The reason a run with ``violations`` reports: ``"overrun:<dimension>: <cause>"`` of the first one."""
    v = violations[0]
    return f"overrun:{v.dimension}: {v.cause}"


def agent_options(target: str, default: bool, *, rank: int, min_usd: Decimal | None, min_tokens: int,
                  tiers: tuple[str, ...], description: str) -> Option:
    """An agent point's option: it needs its step and its cheapest minimal call, and holds only the step."""
    if target == END:
        return Option(Candidate(END, "agent", rank=0, cost_estimate=ZERO, descriptor={"default": default}), free=True)
    cand = Candidate(target, "agent", rank=rank, cost_estimate=min_usd,
                     descriptor={"default": default, "tiers": tiers, "description": description})
    return Option(cand, Spend(usd=min_usd, tokens=min_tokens, steps=1), hold=Spend(usd=ZERO, steps=1))


__all__ = ["META", "Reply", "RunConfig", "Stop", "TaskRun", "TierCall", "agent_options", "overrun_reason", "tier_calls",
           "visible"]
