"""The one loop every routing point runs: observe, mask, decide, reserve, execute and commit, feedback.

A :class:`TaskRun` holds one task's ledger, decisions and records; :class:`StepContext` is what an agent sees
(``ctx.complete``, ``ctx.acomplete``, ``ctx.memory``, ``ctx.route``). Agent choices, model-tier choices and
memory-tier choices all go through :meth:`TaskRun.decide`, so they are masked, validated, reserved and recorded the
same way. The Gymnasium environment drives this same code through the public runtime; nothing here is copied there.

This module must never let a task spend past a limit: every cost is reserved on the ledger before it is incurred,
``max_tokens`` is capped to what the reservation affords, and a failure releases what it held.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agentroute import llm
from agentroute.budget import ZERO, Budget, BudgetStatus, Ledger, Reservation, Spend, Unaffordable
from agentroute.errors import PolicyError, ProviderError
from agentroute.records import CallRecord, LedgerEntry, RunHooks
from agentroute.routing import Candidate, Decision, DecisionRecord, Feedback, Kind, Masked, Observation, TaskInfo

if TYPE_CHECKING:
    from agentroute.graph import AgentSpec
    from agentroute.runtime import App

END = "__end__"


class Stop(BaseException):
    """Internal: nothing affordable is left; the task ends truncated at the next edge."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


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


@dataclass(slots=True)
class _Plan:
    tier: llm.ModelTier
    prices: tuple[Decimal, Decimal] | None
    input_tokens: int
    max_tokens: int
    worst_usd: Decimal | None


class TaskRun:
    """One task in flight: its ledger, position, decisions and records. Created by :class:`~agentroute.runtime.App`."""

    def __init__(self, app: App, ledger: Ledger, policy: Any, inputs: Mapping[str, Any], task_id: str | None,
                 category: str | None, features: Mapping[str, Any] | None) -> None:
        self.app = app
        self.ledger = ledger
        self.policy = policy
        self.policy_name = str(getattr(policy, "name", type(policy).__name__))
        self.policy_version = str(getattr(policy, "version", "0"))
        self.id = task_id or uuid.uuid4().hex
        self.task = TaskInfo(id=self.id, text=app.task_text(inputs), category=category, features=dict(features or {}))
        self.hooks: RunHooks | None = app.hooks
        self.state: dict[str, Any] = dict(inputs)
        self.decisions: list[DecisionRecord] = []
        self.calls: list[CallRecord] = []
        self.history: list[tuple[str, str]] = []
        self.steps = 0
        self.node = app.graph.entry or ""
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.qualities: list[float] = []
        self.pending_step: tuple[Reservation, int | None, Observation | None, Decision | None] | None = None
        """The reserved step of the next agent, with the slot, observation and decision that chose it."""
        self.step_cost: Decimal | None = ZERO
        self.step_tokens = 0
        self.step_started_ns = 0
        self.started_ns = 0
        self._decided: dict[int, int] = {}
        """When each pending decision was made, by ``id(decision)`` (held until its record is written)."""

    # -- ledger moves, each one recorded ----------------------------------------------------------------------
    def reserve(self, amount: Spend, what: str) -> Reservation:
        """Reserve on the ledger (raises :class:`Unaffordable`) and record the entry."""
        r = self.ledger.reserve(amount, what=what)
        if self.hooks is not None:
            self.hooks.on_ledger(LedgerEntry(self.id, "reserve", what, amount, time.time_ns()))
        return r

    def commit(self, r: Reservation, actual: Spend) -> None:
        """Commit what a step really spent; the rest of its reservation is freed."""
        r.commit(actual)
        if self.hooks is not None:
            self.hooks.on_ledger(LedgerEntry(self.id, "commit", r.what, actual, time.time_ns()))

    def release(self, r: Reservation) -> None:
        """Free a reservation whose step spent nothing."""
        if r.settled:
            return
        r.release()
        if self.hooks is not None:
            self.hooks.on_ledger(LedgerEntry(self.id, "release", r.what, r.amount, time.time_ns()))

    def stop(self, reason: str) -> None:
        """End the task at the next edge (the first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stopped(self) -> bool:
        """True once the task must leave the graph."""
        return self.stop_reason is not None or self.error is not None

    # -- observe / mask / decide ------------------------------------------------------------------------------
    def observe(self, kind: Kind, point: str, candidates: Sequence[Candidate], masked: Sequence[Masked],
                extra: Mapping[str, Any] | None = None, remaining: Budget | None = None) -> Observation:
        """Build what the policy sees at a routing point (``remaining``: the budget left, if just computed)."""
        return Observation(
            task=self.task, kind=kind, point=point, node=self.node, step=self.steps, history=tuple(self.history),
            budget=BudgetStatus.of(self.ledger, remaining), candidates=tuple(candidates), masked=tuple(masked),
            extra=extra or {},
        )

    def decide(self, obs: Observation) -> Decision:
        """Ask the policy, and check it chose an affordable candidate (else :class:`PolicyError`)."""
        try:
            d = self.policy.decide(obs)
            self._decided[id(d)] = time.time_ns()
        except Exception as e:
            raise PolicyError(f"policy {self.policy_name!r} raised at {obs.point}: {e!r}", policy=self.policy_name,
                              state=self.state) from e
        chosen = getattr(d, "chosen", None)
        if obs.candidate(chosen) is None:  # type: ignore[arg-type]
            masked = next((m for m in obs.masked if m.id == chosen), None)
            why = f"it was masked ({masked.reason})" if masked else "it is not a candidate"
            raise PolicyError(
                f"policy {self.policy_name!r} chose {chosen!r} at {obs.point}, but {why}; "
                f"candidates were {list(obs.ids)}",
                policy=self.policy_name, chosen=chosen, state=self.state,
            )
        return d  # type: ignore[no-any-return]

    def slot(self, point: str, chosen: str) -> int:
        """Keep a decision's place (and its history entry) now; :meth:`record` fills it once its step settled."""
        self.decisions.append(None)  # type: ignore[arg-type]
        self.history.append((point, chosen))
        return len(self.decisions) - 1

    def record(self, obs: Observation, d: Decision, *, reservation: Spend | None = None,
               cost: Decimal | None = ZERO, tokens: int = 0, quality: float | None = None,
               slot: int | None = None) -> DecisionRecord:
        """Record the decision with its context; ``budget_after`` is what was left once its step settled."""
        index = len(self.decisions) if slot is None else slot
        rec = DecisionRecord(
            task_id=self.id, index=index, kind=obs.kind, point=obs.point, node=obs.node,
            step=obs.step, chosen=d.chosen, probabilities=dict(d.probabilities), scores=dict(d.scores),
            reason=d.reason, policy=self.policy_name, policy_version=self.policy_version, explored=d.explored,
            candidates=obs.candidates, masked=obs.masked, budget_before=obs.budget.remaining.as_dict(),
            budget_after=self.ledger.remaining().as_dict(),
            reservation=None if reservation is None else reservation.as_dict(),
            cost_usd=cost, tokens=tokens, quality=quality, evidence=dict(d.evidence),
            decided_ns=self._decided.pop(id(d), 0),
        )
        if slot is None:
            self.decisions.append(rec)
            self.history.append((obs.point, d.chosen))
        else:
            self.decisions[slot] = rec
        if self.hooks is not None:
            self.hooks.on_decision(rec)
        return rec

    def give_feedback(self, obs: Observation, d: Decision, cost: Decimal | None, tokens: int, latency: float,
                      quality: float | None, ok: bool = True, error: str | None = None) -> None:
        """Hand the outcome to the policy; a learner that fails is a policy error."""
        fb = getattr(self.policy, "feedback", None)
        if fb is None:
            return
        try:
            fb(Feedback(obs, d, cost, tokens, latency, quality, ok, error))
        except Exception as e:
            raise PolicyError(f"policy {self.policy_name!r} feedback raised: {e!r}", policy=self.policy_name,
                              state=self.state) from e

    # -- agent routing points ---------------------------------------------------------------------------------
    def route_agent(self, src: str, targets: Sequence[str]) -> str:
        """The routing point after ``src``: which agent runs next (or END)."""
        if self.stopped:
            return END
        rem = self.ledger.remaining()
        cands: list[Candidate] = []
        masked: list[Masked] = []
        for t, cand in zip(targets, self.app.agent_candidates[src], strict=True):
            if t == END:
                cands.append(cand)
                continue
            info = self.app.agent_info[t]
            why = None
            if rem.steps is not None and rem.steps < 1:
                why = "budget:steps: no step left"
            elif rem.seconds is not None and rem.seconds <= 0:
                why = "budget:seconds: no time left"
            elif rem.usd is not None and info.min_usd is not None and info.min_usd > rem.usd:
                why = f"budget:usd: its cheapest minimal call costs ${info.min_usd}, ${rem.usd} left"
            elif rem.tokens is not None and info.min_tokens > rem.tokens:
                why = f"budget:tokens: its cheapest minimal call needs {info.min_tokens}, {rem.tokens} left"
            if why:
                masked.append(Masked(t, why))
            else:
                cands.append(cand)
        obs = self.observe("agent", f"route:{src}", cands, masked, remaining=rem)
        only_end = len(cands) == 1 and cands[0].id == END and masked
        if not cands or only_end:
            d = Decision(END, {END: 1.0} if cands else {}, reason="forced: nothing else affordable")
            self.stop(_reason_key(masked[0].reason) if masked else "budget")
            self.record(obs, d)
            return END
        d = self.decide(obs)
        if d.chosen == END:
            self.record(obs, d)
            self.give_feedback(obs, d, ZERO, 0, 0.0, None)
            return END
        try:
            r = self.reserve(Spend(usd=ZERO, steps=1), f"step:{d.chosen}")
        except Unaffordable as e:
            self.stop(f"budget:{e.dimension}")
            self.record(obs, d)
            return END
        self.pending_step = (r, self.slot(obs.point, d.chosen), obs, d)
        return d.chosen

    # -- model routing points ---------------------------------------------------------------------------------
    def plan_calls(self, spec: AgentSpec, messages: Sequence[Mapping[str, Any]], max_tokens: int | None,
                   exclude: Mapping[str, str]) -> tuple[list[Candidate], list[Masked], dict[str, _Plan]]:
        """Price the worst case of the call on every tier and mask what the budget cannot afford."""
        rem = self.ledger.remaining()
        cands: list[Candidate] = []
        masked: list[Masked] = []
        plans: dict[str, _Plan] = {}
        counted: dict[str, int] = {}
        for tier in self.app.sorted_tiers[spec.name]:
            if tier.name in exclude:
                masked.append(Masked(tier.name, exclude[tier.name]))
                continue
            prices = self.app.prices[tier.name]
            n_in = counted.get(tier.model)
            if n_in is None:
                # Reserve for a little more input than counted: providers' own counts can differ slightly.
                counted_in = llm.count_tokens(tier.model, messages)
                n_in = counted[tier.model] = counted_in + math.ceil(counted_in * self.app.input_margin[0]) \
                    + self.app.input_margin[1]
            want = max_tokens if max_tokens is not None else tier.max_tokens
            floor_tokens = min(self.app.min_answer_tokens, want)
            cap = want
            why = None
            if rem.seconds is not None and rem.seconds <= 0:
                why = "budget:seconds: no time left"
            if rem.tokens is not None:
                cap = min(cap, rem.tokens - n_in)
                if why is None and cap < floor_tokens:
                    why = f"budget:tokens: {n_in} input + {floor_tokens} answer tokens needed, {rem.tokens} left"
            if rem.usd is not None and prices is not None:
                left = rem.usd - prices[0] * n_in
                afford = int(left / prices[1]) if prices[1] > 0 else (want if left >= 0 else -1)
                cap = min(cap, afford)
                if why is None and cap < floor_tokens:
                    need = prices[0] * n_in + prices[1] * floor_tokens
                    why = f"budget:usd: a {floor_tokens}-token answer costs ${need:.8f}, ${rem.usd:.8f} left"
            if why is not None:
                masked.append(Masked(tier.name, why))
                continue
            worst = None if prices is None else prices[0] * n_in + prices[1] * cap
            plans[tier.name] = _Plan(tier, prices, n_in, cap, worst)
            cands.append(Candidate(
                tier.name, "model", rank=self.app.tier_rank[tier.name],
                input_price=None if prices is None else prices[0],
                output_price=None if prices is None else prices[1], cost_estimate=worst,
                descriptor={"model": tier.model, "max_tokens": cap, "input_tokens": n_in,
                            "description": tier.description},
            ))
        return cands, masked, plans

    def choose_tier(self, spec: AgentSpec, messages: Sequence[Mapping[str, Any]], max_tokens: int | None,
                    exclude: Mapping[str, str], extra: Mapping[str, Any]) -> tuple[Observation, Decision, _Plan]:
        """Observe, mask and decide which tier serves this call; raise :class:`Stop` when none is affordable."""
        cands, masked, plans = self.plan_calls(spec, messages, max_tokens, exclude)
        obs = self.observe("model", f"{spec.name}.model", cands, masked, {"max_tokens": max_tokens, **extra})
        if not cands:
            budget_reasons = [m.reason for m in masked if m.reason.startswith("budget:")]
            if budget_reasons:  # the budget stands between the task and any (fallback) tier: a truncation
                raise Stop(_reason_key(budget_reasons[0]))
            raise ProviderError(
                f"agent {spec.name!r}: no tier could serve the call: "
                + "; ".join(f"{m.id}: {m.reason}" for m in masked),
                state=self.state,
            )
        d = self.decide(obs)
        return obs, d, plans[d.chosen]

    def begin_attempt(self, spec: AgentSpec, plan: _Plan,
                      messages: Sequence[Mapping[str, Any]]) -> tuple[Reservation, dict[str, Any]]:
        """Reserve the worst case of one attempt and build its LiteLLM arguments (timeout capped to time left)."""
        worst = plan.worst_usd if plan.worst_usd is not None else ZERO
        amount = Spend(usd=worst, tokens=plan.input_tokens + plan.max_tokens)
        r = self.reserve(amount, f"call:{spec.name}:{plan.tier.name}")
        timeout = plan.tier.timeout
        rem_s = self.ledger.remaining().seconds
        if rem_s is not None:
            timeout = max(0.001, min(timeout, rem_s))
        kwargs = llm.call_kwargs(self.app.provider.kwargs_for(plan.tier), messages, plan.max_tokens, timeout)
        return r, kwargs

    def end_attempt(self, spec: AgentSpec, plan: _Plan, r: Reservation, kwargs: Mapping[str, Any],
                    messages: Sequence[Mapping[str, Any]],
                    raw: llm.RawReply | None, exc: BaseException | None, started_ns: int, attempt: int,
                    fallback: bool) -> Reply | None:
        """Commit (or release) one attempt and record it; return the reply when it succeeded."""
        ended = time.time_ns()
        if raw is None:
            self.release(r)
            cost: Decimal | None = ZERO
            n_in = n_out = 0
        else:
            n_in, n_out = raw.input_tokens, raw.output_tokens
            cost = llm.cost_of(plan.prices, n_in, n_out)
            self.commit(r, Spend(usd=cost, tokens=n_in + n_out))
            self.step_cost = None if cost is None or self.step_cost is None else self.step_cost + cost
            self.step_tokens += n_in + n_out
        capture = self.app.capture_content
        rec = CallRecord(
            task_id=self.id, step=self.steps, agent=spec.name, tier=plan.tier.name, model=plan.tier.model,
            provider=self.app.provider.provider_name(plan.tier), attempt=attempt, fallback=fallback,
            max_tokens=plan.max_tokens, timeout=kwargs.get("timeout"), input_tokens=n_in, output_tokens=n_out,
            cost_usd=cost, started_ns=started_ns, ended_ns=ended,
            response_model=None if raw is None else raw.response_model,
            error_type=None if exc is None else type(exc).__name__,
            error=None if exc is None else str(exc)[:500],
            messages=[dict(m) for m in messages] if capture else None,
            completion=raw.text if capture and raw is not None else None,
        )
        self.calls.append(rec)
        if self.hooks is not None:
            self.hooks.on_model_call(rec)
        if raw is None:
            return None
        quality = self.app.provider.quality_of(raw)
        if quality is not None:
            self.qualities.append(quality)
        return Reply(text=raw.text, tier=plan.tier.name, model=plan.tier.model, input_tokens=n_in,
                     output_tokens=n_out, cost_usd=cost, latency=(ended - started_ns) / 1e9, quality=quality,
                     finish_reason=raw.finish_reason, attempts=attempt, response=raw.response)

    def settle_choice(self, obs: Observation, d: Decision, plan: _Plan, reply: Reply | None, spent: Decimal | None,
                      tokens: int, latency: float, error: str | None) -> None:
        """Record a model-tier decision once its attempts are over, and give the policy its feedback."""
        reserved = Spend(usd=plan.worst_usd, tokens=plan.input_tokens + plan.max_tokens)
        self.record(obs, d, reservation=reserved, cost=spent, tokens=tokens,
                    quality=None if reply is None else reply.quality)
        self.give_feedback(obs, d, spent, tokens, latency, None if reply is None else reply.quality,
                           ok=reply is not None, error=error)

    def accepts(self, obs: Observation, d: Decision, reply: Reply) -> bool:
        """A cascade policy may reject an answer, asking for a stronger tier; others accept everything."""
        accept: Callable[[Observation, Decision, Reply], bool] | None = getattr(self.policy, "accept", None)
        if accept is None:
            return True
        try:
            return bool(accept(obs, d, reply))
        except Exception as e:
            raise PolicyError(f"policy {self.policy_name!r} accept() raised: {e!r}", policy=self.policy_name,
                              state=self.state) from e


def _reason_key(reason: str) -> str:
    """``"budget:usd: details"`` -> ``"budget:usd"``."""
    return ":".join(reason.split(":", 2)[:2])


def _min_call(tiers: Sequence[llm.ModelTier], prices: Mapping[str, tuple[Decimal, Decimal] | None],
              min_tokens: int) -> tuple[Decimal | None, int]:
    """The cheapest minimal call among ``tiers``: a ``min_tokens`` answer to an empty prompt."""
    best: Decimal | None = None
    for t in tiers:
        p = prices[t.name]
        if p is None:
            continue
        c = p[1] * min_tokens
        best = c if best is None or c < best else best
    return best, (min_tokens if tiers else 0)


__all__ = ["END", "Reply", "Stop", "TaskRun"]

