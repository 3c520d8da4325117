"""What an agent sees: the :class:`StepContext` handed to every agent function as ``ctx``.

``ctx.complete(messages)`` (and its async twin ``ctx.acomplete``) is a model routing point: the policy picks the tier,
the worst case is reserved, ``max_tokens`` is capped to what the budget affords, failed attempts are retried with
backoff and then fall back to another affordable tier, and a cascade policy may ask for a stronger tier. ``ctx.route``
is the generic routing point that memory modules (and users) use for any other choice. ``ctx.memory`` is the agent's
memory, bound to this step so its tier choices and model calls are budgeted like everything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agentroute import llm
from agentroute._loop import Reply, Stop, TaskRun, _reason_key
from agentroute.budget import ZERO, Reservation, Spend, Unaffordable
from agentroute.errors import ConfigError
from agentroute.routing import Candidate, Decision, Kind, Masked, Observation

if TYPE_CHECKING:
    from agentroute.graph import AgentSpec

Messages = Sequence[Mapping[str, Any]]


@dataclass(slots=True)
class Choice:
    """An open routing decision made with :meth:`StepContext.route`: run the option, then :meth:`settle` it."""

    chosen: str
    observation: Observation
    decision: Decision
    _run: TaskRun
    _reservation: Reservation
    _started: float

    def settle(self, actual: Spend | None = None, *, quality: float | None = None) -> None:
        """Commit what the option really cost (``None`` = nothing) and give the policy its feedback."""
        spent = actual or Spend()
        self._run.commit(self._reservation, spent)
        self._run.record(self.observation, self.decision, reservation=self._reservation.amount,
                         cost=spent.usd, tokens=spent.tokens, quality=quality)
        self._run.give_feedback(self.observation, self.decision, spent.usd, spent.tokens,
                                time.monotonic() - self._started, quality)

    def fail(self, error: str) -> None:
        """Release the reservation: the option failed before spending anything."""
        self._run.release(self._reservation)
        self._run.record(self.observation, self.decision, reservation=self._reservation.amount)
        self._run.give_feedback(self.observation, self.decision, ZERO, 0, time.monotonic() - self._started, None,
                                ok=False, error=error)


class StepContext:
    """The handle an agent gets for one step: model calls, memory, generic routing points, and budget facts."""

    __slots__ = ("_memory", "_run", "agent", "step")

    def __init__(self, run: TaskRun, agent: AgentSpec, step: int) -> None:
        self._run = run
        self.agent = agent
        self.step = step
        self._memory: Any = None

    @property
    def task_id(self) -> str:
        """Id of the task this step belongs to."""
        return self._run.id

    @property
    def remaining(self) -> Any:
        """What is left of the budget right now (a :class:`~agentroute.budget.Budget`; ``None`` = unlimited)."""
        return self._run.ledger.remaining()

    @property
    def memory(self) -> Any:
        """The agent's memory, bound to this step (its tier choices are routing points, its calls are budgeted)."""
        if self.agent.memory is None:
            raise ConfigError(f"agent {self.agent.name!r} has no memory", name=self.agent.name,
                              hint="attach one with @graph.agent(memory=Memory.from_conversation(...))")
        if self._memory is None:
            bind = getattr(self.agent.memory, "bind", None)
            self._memory = bind(self) if bind is not None else self.agent.memory
        return self._memory

    # -- model calls ------------------------------------------------------------------------------------------
    def _check(self, messages: Messages, tiers: Sequence[str] | None) -> dict[str, str]:
        if not self.agent.tiers:
            raise ConfigError(f"agent {self.agent.name!r} has no model tiers", name=self.agent.name,
                              hint="declare @graph.agent(tiers=[...]) to call a model")
        if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
            raise ConfigError("messages must be a non-empty list of {'role', 'content'} dicts",
                              name=self.agent.name)
        exclude: dict[str, str] = {}
        if tiers is not None:
            known = {t.name for t in self.agent.tiers}
            for t in tiers:
                if t not in known:
                    raise ConfigError(f"agent {self.agent.name!r} has no tier {t!r}", name=t,
                                      hint=f"tiers: {', '.join(sorted(known))}")
            exclude = {t: "not offered for this call" for t in known - set(tiers)}
        return exclude

    def complete(self, messages: Messages, *, max_tokens: int | None = None, tiers: Sequence[str] | None = None,
                 **extra: Any) -> Reply:
        """Call a model: the policy picks the tier, the budget caps the answer. Sync twin of :meth:`acomplete`."""
        steps = self._call_steps(messages, max_tokens, tiers, extra)
        request = next(steps)
        while True:
            try:
                if request[0] == "sleep":
                    time.sleep(request[1])
                    request = steps.send(None)
                    continue
                try:
                    outcome: Any = llm.complete(request[1])
                except Exception as e:
                    outcome = e
                request = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def acomplete(self, messages: Messages, *, max_tokens: int | None = None,
                        tiers: Sequence[str] | None = None, **extra: Any) -> Reply:
        """Async twin of :meth:`complete`."""
        steps = self._call_steps(messages, max_tokens, tiers, extra)
        request = next(steps)
        while True:
            try:
                if request[0] == "sleep":
                    await asyncio.sleep(request[1])
                    request = steps.send(None)
                    continue
                try:
                    outcome: Any = await llm.acomplete(request[1])
                except asyncio.CancelledError as e:
                    steps.throw(e)  # frees the reservation, then re-raises
                    raise
                except Exception as e:
                    outcome = e
                request = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _call_steps(self, messages: Messages, max_tokens: int | None, tiers: Sequence[str] | None,
                    extra: Mapping[str, Any]) -> Generator[tuple[str, Any], Any, Reply]:
        """The whole model routing point, written once for both twins.

        It yields ``("call", litellm_kwargs)`` and is sent back the raw reply or the exception raised, and yields
        ``("sleep", seconds)`` for backoff and contention waits; it returns the :class:`Reply`. The sync and async
        twins only differ in how they perform those two requests.
        """
        run, spec = self._run, self.agent
        exclude = self._check(messages, tiers)
        tried_any = False
        last: Reply | None = None
        waited = 0.0
        while True:
            try:
                obs, d, plan = run.choose_tier(spec, messages, max_tokens, exclude, extra)
            except Stop as stop:
                if last is not None:  # escalation ran out of budget: keep the answer we have
                    return last
                pause = self._contended(stop, waited)
                if pause is None:
                    raise
                waited += pause
                yield ("sleep", pause)
                continue
            reply, error = None, None
            spent: Decimal | None = ZERO
            tokens, t0 = 0, time.monotonic()
            for attempt in range(1, run.app.max_retries + 2):
                try:
                    r, kwargs = run.begin_attempt(spec, plan, messages)
                except Unaffordable as e:
                    error = f"budget:{e.dimension}: reservation refused"
                    break
                started = time.time_ns()
                try:
                    outcome = yield ("call", kwargs)
                except BaseException:  # cancelled while the call was in flight
                    run.release(r)
                    raise
                if isinstance(outcome, BaseException):
                    run.end_attempt(spec, plan, r, kwargs, messages, None, outcome, started, attempt, tried_any)
                    error = f"{type(outcome).__name__}: {str(outcome)[:200]}"
                    if not llm.is_retryable(outcome) or attempt > run.app.max_retries:
                        break
                    yield ("sleep", self._backoff(attempt))
                    continue
                reply = run.end_attempt(spec, plan, r, kwargs, messages, outcome, None, started, attempt, tried_any)
                break
            if reply is not None:
                spent, tokens = reply.cost_usd, reply.input_tokens + reply.output_tokens
            run.settle_choice(obs, d, plan, reply, spent, tokens, time.monotonic() - t0, error)
            if reply is None:
                exclude[plan.tier.name] = error if error and error.startswith("budget:") else f"failed: {error}"
                tried_any = True
                continue
            last = reply
            if run.accepts(obs, d, reply) or not self._stronger_left(obs, plan.tier.name):
                return reply
            exclude[plan.tier.name] = "tried: answer rejected by the cascade"
            tried_any = True

    def _contended(self, stop: Stop, waited: float) -> float | None:
        """How long to wait before trying again, when only other calls' reservations stand in the way; else None.

        Concurrent tasks on a shared budget each hold their worst case while their calls run. Rather than
        truncate a task because of money that is merely held (and mostly about to be released), wait for it to
        settle, up to ``App.contention_wait`` seconds (and never past the task's own time limit).
        """
        dim = stop.reason.removeprefix("budget:")
        limit = self._run.app.contention_wait
        rem = self._run.ledger.remaining().seconds
        if rem is not None:
            limit = min(limit, waited + rem)
        if dim not in ("usd", "tokens", "steps") or waited >= limit or not self._run.ledger.held(dim):
            return None
        return min(0.05, 0.002 * (1 + waited * 50), limit - waited)

    def _backoff(self, attempt: int) -> float:
        wait = llm.backoff(attempt, base=self._run.app.retry_backoff)
        rem = self._run.ledger.remaining().seconds
        return wait if rem is None else max(0.0, min(wait, rem))

    @staticmethod
    def _stronger_left(obs: Observation, tier: str) -> bool:
        cur = obs.candidate(tier)
        return cur is not None and any(c.rank > cur.rank for c in obs.candidates)

    # -- any other routing point ------------------------------------------------------------------------------
    def route(self, kind: Kind, point: str, candidates: Sequence[Candidate], *,
              extra: Mapping[str, Any] | None = None) -> Choice:
        """A routing point of your own (memory tiers use it): mask, decide, reserve each option's worst case.

        Each candidate's ``cost_estimate`` (USD) and ``descriptor["tokens"]`` (worst-case tokens) are reserved for
        the chosen one; candidates the budget cannot afford are masked. Run the chosen option, then call
        :meth:`Choice.settle` with what it really cost (or :meth:`Choice.fail`). Raises :class:`Stop` (the task ends
        truncated) when nothing is affordable.
        """
        run = self._run
        rem = run.ledger.remaining()
        cands: list[Candidate] = []
        masked: list[Masked] = []
        for c in candidates:
            tok = int(c.descriptor.get("tokens", 0) or 0)
            if rem.usd is not None and c.cost_estimate is not None and c.cost_estimate > rem.usd:
                masked.append(Masked(c.id, f"budget:usd: worst case ${c.cost_estimate}, ${rem.usd} left"))
            elif rem.tokens is not None and tok > rem.tokens:
                masked.append(Masked(c.id, f"budget:tokens: worst case {tok}, {rem.tokens} left"))
            else:
                cands.append(c)
        obs = run.observe(kind, point, cands, masked, extra)
        if not cands:
            raise Stop(_reason_key(masked[0].reason) if masked else "budget")
        d = run.decide(obs)
        pick = obs.candidate(d.chosen)
        assert pick is not None  # decide() checked it
        amount = Spend(usd=pick.cost_estimate if pick.cost_estimate is not None else ZERO,
                       tokens=int(pick.descriptor.get("tokens", 0) or 0))
        try:
            r = run.reserve(amount, f"{kind}:{point}:{pick.id}")
        except Unaffordable as e:
            raise Stop(f"budget:{e.dimension}") from None
        return Choice(pick.id, obs, d, run, r, time.monotonic())


__all__ = ["Choice", "Reply", "StepContext"]

