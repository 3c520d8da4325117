"""The model-tier driver: what ``ctx.complete`` / ``ctx.acomplete`` (and memory's model step) do around the kernel.

The kernel masks, decides, reserves, settles, gives feedback and records; this module supplies what only a model call
knows: the worst case of the call on every tier (input tokens counted once per *tokenizer*, not per tier, plus a
small margin; ``max_tokens`` capped to what the budget affords; a tier that cannot afford even
``min_answer_tokens`` is offered needing that minimal answer, so the kernel masks it with its usual reason), the
LiteLLM arguments of each attempt (timeout capped to the time left), retries with backoff, fallback to another tier
after a failure, and cascades (the policy's ``accept`` may ask for a stronger tier).

When no USD or token limit applies to the task (nor to a shared budget above it), input tokens are not counted at
all: the tiers are offered with a rough estimate (four characters a token) as their ``input_tokens`` and the call
reserves no USD and no tokens (its spend is booked as reported); only the time check remains.

:func:`call_steps` is the whole routing point, written once as a generator for both twins: it yields
``("call", litellm_kwargs)`` and is sent back the raw reply or the exception raised, and yields ``("sleep",
seconds)`` for backoff and contention waits; it returns the :class:`~agentroute._loop.Reply`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentroute import _settle, llm
from agentroute._llm_clock import CallDeadline
from agentroute._loop import Prices, Reply, Stop, TaskRun, overrun_reason
from agentroute._spec import AgentSpec
from agentroute.budget import ZERO, BudgetStatus, Spend
from agentroute.errors import ProviderError
from agentroute.records import CallRecord
from agentroute.routing import Candidate, Choice, Option

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Plan:
    """The worst case of the call on one tier, as offered."""

    tier: llm.ModelTier
    prices: Prices | None
    input_tokens: int
    max_tokens: int
    hold: Spend
    choices: int = 1
    sent: int = 0
    """The prompt's own count (no margin, no tools): what settlement compares the reported input with."""


def plan(run: TaskRun, spec: AgentSpec, messages: Messages, max_tokens: int | None, exclude: Mapping[str, str],
         status: BudgetStatus) -> tuple[list[Option], dict[str, Plan]]:
    """Every tier of ``spec`` as an option (see the module docstring), from one budget snapshot."""
    cfg = run.cfg
    rem = status.remaining
    metered = rem.usd is not None or rem.tokens is not None
    counted: dict[str, int] = {}
    rough: int | None = None
    options: list[Option] = []
    plans: dict[str, Plan] = {}
    frac, const = cfg.input_margin
    for tc in cfg.tier_calls[spec.name]:
        tier = tc.tier
        if tier.name in exclude:
            options.append(Option(Candidate(tier.name, "model", rank=tc.rank), blocked=exclude[tier.name]))
            continue
        prices = tc.prices
        if metered:
            key = llm.tokenizer_key(tier.model)
            sent = counted.get(key)
            if sent is None:
                sent = counted[key] = llm.count_tokens(tier.model, messages)
            n_in = sent + math.ceil(sent * frac) + const  # providers' own counts differ slightly
        else:
            n_in = sent = rough = llm.rough_tokens(messages) if rough is None else rough
        if tc.tools:
            n_in += _tool_tokens(tier, metered, cfg.input_margin)
        k = tc.choices  # n / best_of: each answer may be max_tokens long
        want = max_tokens if max_tokens is not None else tier.max_tokens
        cap = want
        if rem.tokens is not None:
            cap = min(cap, (rem.tokens - n_in) // k)
        if rem.usd is not None and prices is not None:
            left = rem.usd - prices[0] * n_in
            cap = min(cap, int(left / (prices[1] * k)) if prices[1] > 0 else (want if left >= 0 else -1))
        size = max(cap, min(cfg.min_answer_tokens, want))  # below a minimal answer: offered needing that answer
        worst = None if prices is None else prices[0] * n_in + prices[1] * size * k
        if metered:
            need = Spend(worst, n_in + size * k)
            hold = Spend(worst, n_in + cap * k)
        else:
            need, hold = Spend(), Spend(usd=None)
        plans[tier.name] = Plan(tier, prices, n_in, cap, hold, k, sent)
        options.append(Option(Candidate(
            tier.name, "model", rank=tc.rank, input_price=None if prices is None else prices[0],
            output_price=None if prices is None else prices[1], cost_estimate=worst,
            descriptor={"model": tier.model, "max_tokens": cap, "input_tokens": n_in, "description": tier.description},
        ), need, hold))
    return options, plans


def _tool_tokens(tier: llm.ModelTier, metered: bool, margin: tuple[float, int]) -> int:
    """Input tokens of the tier's tool definitions and response format (with the input margin when metered)."""
    n = llm.param_tokens(tier, rough=not metered)
    return n + math.ceil(n * margin[0]) if metered and n else n


def call_steps(run: TaskRun, spec: AgentSpec, messages: Messages, max_tokens: int | None, exclude: dict[str, str],
               extra: Mapping[str, Any], point: str) -> Generator[tuple[str, Any], Any, Reply]:
    """The model routing point (see the module docstring)."""
    router = run.router
    fallback = False
    last: Reply | None = None
    waited = 0.0
    while True:
        if run.ledger.violations:  # after an overrun no further call runs: the task ends as overrun
            raise Stop(overrun_reason(run.ledger.violations))
        status = router.snapshot()
        options, plans = plan(run, spec, messages, max_tokens, exclude, status)
        pending = router.observe("model", point, options, extra={"max_tokens": max_tokens, **extra}, status=status)
        if pending.empty:
            if not any(m.reason.startswith("budget:") for m in pending.observation.masked):
                raise ProviderError(
                    f"agent {spec.name!r}: no tier could serve the call: "
                    + "; ".join(f"{m.id}: {m.reason}" for m in pending.observation.masked), state=run.state)
            if last is not None:  # escalation ran out of budget: keep the answer we have
                return last
            pause = _contended(run, pending.exhausted, waited)
            if pause is None:
                raise Stop(pending.exhausted)
            waited += pause
            yield ("sleep", pause)
            continue
        choice = router.decide(pending, reserve=False)
        if choice.stop is not None:  # the decision used up the task's time
            if last is not None:
                return last
            raise Stop(choice.stop)
        p = plans[str(choice.chosen)]
        choice.what = f"call:{spec.name}:{p.tier.name}"
        reply, error = None, None
        for attempt in range(1, run.cfg.max_retries + 2):
            if not choice.reserve(p.hold):
                error = f"budget:{choice.refused}: reservation refused"
                break
            kwargs = _kwargs(run, p, messages)
            started = time.time_ns()
            try:
                outcome = yield ("call", kwargs)
            except BaseException:  # cancelled while the call was in flight: billed like a failure
                _charge_failed(run, choice, p, None)
                raise
            if isinstance(outcome, BaseException):
                _end(run, spec, choice, p, kwargs, messages, None, outcome, started, attempt, fallback)
                error = f"{type(outcome).__name__}: {_settle.error_text(outcome, kwargs)[:200]}"
                if isinstance(outcome, CallDeadline):  # the task's time is up: it stops, truncated
                    error = f"budget:seconds: {outcome}"
                    break
                if not llm.is_retryable(outcome) or attempt > run.cfg.max_retries:
                    break
                yield ("sleep", _backoff(run, attempt))
                continue
            reply = _end(run, spec, choice, p, kwargs, messages, outcome, None, started, attempt, fallback)
            break
        choice.close(quality=None if reply is None else reply.quality, ok=reply is not None, error=error)
        if reply is None:
            exclude[p.tier.name] = error if error and error.startswith("budget:") else f"failed: {error}"
            fallback = True
            continue
        last = reply
        if router.accepts(choice, reply) or not _stronger_left(choice, p.tier.name):
            return reply
        exclude[p.tier.name] = "tried: answer rejected by the cascade"
        fallback = True


def _kwargs(run: TaskRun, p: Plan, messages: Messages) -> dict[str, Any]:
    timeout = p.tier.timeout
    limit = run.ledger.limits.seconds
    if limit is not None:
        timeout = max(0.001, min(timeout, limit - run.ledger.elapsed()))
    return llm.call_kwargs(run.cfg.provider.kwargs_for(p.tier), messages, p.max_tokens, timeout, p.choices)


def _end(run: TaskRun, spec: AgentSpec, choice: Choice, p: Plan, kwargs: Mapping[str, Any], messages: Messages,
         raw: llm.RawReply | None, exc: BaseException | None, started_ns: int, attempt: int,
         fallback: bool) -> Reply | None:
    """Commit (or release) one attempt and record it; return the reply when it succeeded."""
    ended = time.time_ns()
    if raw is None:
        n_in = n_out = 0
        billing, cost = _charge_failed(run, choice, p, exc)
    else:
        amount, n_in, n_out, billing = _settle.charge_reply(p.prices, p.tier.model, p.sent, p.input_tokens,
                                                            p.max_tokens * p.choices, raw, metered=p.hold.tokens > 0)
        booked = choice.commit(amount)
        cost = booked.usd
        run.charge(cost, booked.tokens)
    capture = run.cfg.capture_content
    rec = CallRecord(
        task_id=run.id, step=run.steps, agent=spec.name, tier=p.tier.name, model=p.tier.model,
        provider=run.cfg.provider.provider_name(p.tier), attempt=attempt, fallback=fallback,
        max_tokens=p.max_tokens, timeout=kwargs.get("timeout"), input_tokens=n_in, output_tokens=n_out,
        cost_usd=cost, started_ns=started_ns, ended_ns=ended, billing=billing,
        response_model=None if raw is None else raw.response_model,
        error_type=None if exc is None else type(exc).__name__,
        error=None if exc is None else _settle.error_text(exc, kwargs),
        messages=[dict(m) for m in messages] if capture else None,
        completion=raw.text if capture and raw is not None else None,
    )
    run.calls.append(rec)
    if run.hooks is not None:
        run.hooks.on_model_call(rec)
    if raw is None:
        return None
    quality = run.cfg.provider.quality_of(raw)
    if quality is not None:
        run.qualities.append(quality)
    return Reply(text=raw.text, tier=p.tier.name, model=p.tier.model, input_tokens=n_in, output_tokens=n_out,
                 cost_usd=cost, latency=(ended - started_ns) / 1e9, quality=quality,
                 finish_reason=raw.finish_reason, attempts=attempt, response=raw.response)


def _charge_failed(run: TaskRun, choice: Choice, p: Plan, exc: BaseException | None) -> tuple[str, Decimal | None]:
    """Settle a failed (``exc``) or cancelled (``None``) attempt: its worst case, or nothing (see :mod:`._settle`).

    Returns the basis of the charge and what was charged.
    """
    if run.cfg.charge_failed == "worst_case" and _settle.billed_failure(exc) and choice.held:
        booked = choice.commit(_settle.worst_case(p.prices, p.input_tokens, p.max_tokens * p.choices))
        run.charge(booked.usd, booked.tokens)
        return "worst_case: " + ("cancelled" if exc is None else "failed"), booked.usd
    choice.release()
    return "none", ZERO


def _contended(run: TaskRun, reason: str, waited: float) -> float | None:
    """How long to wait before trying again, when only other calls' reservations stand in the way; else None.

    Concurrent tasks on a shared budget each hold their worst case while their calls run. Rather than truncate a
    task because of money that is merely held (and mostly about to be released), wait for it to settle, up to
    ``App.contention_wait`` seconds (and never past the task's own time limit).
    """
    dim = reason.removeprefix("budget:")
    limit = run.cfg.contention_wait
    lim_s = run.ledger.limits.seconds
    if lim_s is not None:
        limit = min(limit, waited + max(0.0, lim_s - run.ledger.elapsed()))
    if dim not in ("usd", "tokens", "steps") or waited >= limit or not run.ledger.held(dim):
        return None
    return min(0.05, 0.002 * (1 + waited * 50), limit - waited)


def _backoff(run: TaskRun, attempt: int) -> float:
    wait = llm.backoff(attempt, base=run.cfg.retry_backoff)
    lim_s = run.ledger.limits.seconds
    return wait if lim_s is None else max(0.0, min(wait, lim_s - run.ledger.elapsed()))


def _stronger_left(choice: Choice, tier: str) -> bool:
    obs = choice.observation
    cur = obs.candidate(tier)
    return cur is not None and any(c.rank > cur.rank for c in obs.candidates)


__all__ = ["Plan", "call_steps", "plan"]
