"""What an agent sees: the :class:`StepContext` handed to every agent function as ``ctx``.

``ctx.complete(messages)`` (and its async twin ``ctx.acomplete``) is a model routing point: the policy picks the tier,
the worst case is reserved, ``max_tokens`` is capped to what the budget affords, failed attempts are retried with
backoff and then fall back to another affordable tier, and a cascade policy may ask for a stronger tier
(:mod:`agentroute._calls`). ``ctx.route`` is the generic routing point for any other choice. ``ctx.memory`` is the
agent's memory, bound to this step: its tier choices go through the task's routing kernel and its model step through
``ctx.complete``. All of them are the one routing point of :mod:`agentroute.routing.point`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from agentroute import _llm_clock, llm
from agentroute._calls import call_steps
from agentroute._loop import Reply, Stop, TaskRun
from agentroute._spec import AgentSpec
from agentroute.budget import Budget
from agentroute.errors import ConfigError
from agentroute.routing import Candidate, Choice, Kind, Option, TaskRouter, option

Messages = Sequence[Mapping[str, Any]]
LLMCall = Callable[[Sequence[Mapping[str, str]], int], tuple[str, int, int, Decimal | None]]


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
    def node(self) -> str:
        """The agent running this step (routing points made here are named after it)."""
        return self.agent.name

    @property
    def router(self) -> TaskRouter:
        """The task's routing kernel, positioned at this step (what memory drives its tiers through)."""
        return self._run.router

    @property
    def remaining(self) -> Budget:
        """What is left of the budget right now (``None`` = unlimited on that dimension)."""
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

    def _steps(self, messages: Messages, max_tokens: int | None, tiers: Sequence[str] | None,
               extra: Mapping[str, Any], point: str | None) -> Generator[tuple[str, Any], Any, Reply]:
        exclude = self._check(messages, tiers)
        return call_steps(self._run, self.agent, messages, max_tokens, exclude, extra,
                          point or f"{self.agent.name}.model")

    def complete(self, messages: Messages, *, max_tokens: int | None = None, tiers: Sequence[str] | None = None,
                 **extra: Any) -> Reply:
        """Call a model: the policy picks the tier, the budget caps the answer. Sync twin of :meth:`acomplete`."""
        return self._complete(messages, max_tokens, tiers, extra, None)

    def _complete(self, messages: Messages, max_tokens: int | None, tiers: Sequence[str] | None,
                  extra: Mapping[str, Any], point: str | None) -> Reply:
        steps = self._steps(messages, max_tokens, tiers, extra, point)
        request = next(steps)
        while True:
            try:
                if request[0] == "sleep":
                    time.sleep(request[1])
                    request = steps.send(None)
                    continue
                try:
                    outcome: Any = _llm_clock.complete_within(request[1], self._time_left())
                except Exception as e:
                    outcome = e
                request = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def acomplete(self, messages: Messages, *, max_tokens: int | None = None,
                        tiers: Sequence[str] | None = None, **extra: Any) -> Reply:
        """Async twin of :meth:`complete`."""
        steps = self._steps(messages, max_tokens, tiers, extra, None)
        request = next(steps)
        while True:
            try:
                if request[0] == "sleep":
                    await asyncio.sleep(request[1])
                    request = steps.send(None)
                    continue
                left = self._time_left()
                try:  # without a seconds limit the call is awaited as is (one coroutine layer less per call)
                    outcome: Any = await (llm.acomplete(request[1]) if left is None
                                          else _llm_clock.acomplete_within(request[1], left))
                except asyncio.CancelledError as e:
                    steps.throw(e)  # frees the reservation, then re-raises
                    raise
                except Exception as e:
                    outcome = e
                request = steps.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _time_left(self) -> float | None:
        """Seconds the task may still wait for a call (``None`` without a ``seconds`` limit)."""
        ledger = self._run.ledger
        limit = ledger.limits.seconds
        return None if limit is None else limit - ledger.elapsed()

    def model_call(self, point: str) -> LLMCall | None:
        """Memory's model step as a model routing point of this task (``<point>.model``), or ``None``.

        The call goes through :meth:`complete`: the policy picks one of the agent's tiers, and the call is reserved,
        charged, retried and traced like any other. ``None`` when the agent has no tiers (memory then uses its
        deterministic stand-in, charged at its own routing point).
        """
        if not self.agent.tiers:
            return None

        def call(messages: Sequence[Mapping[str, str]], max_tokens: int) -> tuple[str, int, int, Decimal | None]:
            r = self._complete(messages, max_tokens, None, {}, f"{point}.model")
            return r.text, r.input_tokens, r.output_tokens, r.cost_usd

        return call

    # -- any other routing point ------------------------------------------------------------------------------
    def route(self, kind: Kind, point: str, candidates: Sequence[Candidate | Option], *,
              extra: Mapping[str, Any] | None = None) -> Choice:
        """A routing point of your own: mask, decide, reserve the chosen option's worst case.

        Each candidate's ``cost_estimate`` (USD) and ``descriptor["tokens"]`` (worst-case tokens) are what it needs
        and what is reserved when it is chosen (pass :class:`~agentroute.routing.Option` s to say more); candidates
        the budget cannot afford are masked. Run the chosen option, then call :meth:`Choice.settle` with what it
        really cost (or :meth:`Choice.fail`). When nothing is affordable the task ends, truncated, at the next edge.
        """
        options = [c if isinstance(c, Option) else option(c) for c in candidates]
        choice = self._run.router.route(kind, point, options, extra=extra)
        if choice.stop is not None:
            raise Stop(choice.stop)
        return choice


__all__ = ["Choice", "Reply", "StepContext"]
