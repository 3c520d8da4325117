"""A memory bound to a task: every module's tier is a routing point of the task's kernel, served or offline alike.

``ctx.memory.recall(query)`` runs the pipeline module by module. At each module the task's
:class:`~agentroute.routing.TaskRouter` masks the tiers the budget cannot afford, asks the task's policy
(``kind="memory"``, point ``<agent>.memory.<module>``), reserves the chosen tier's worst case, and after the module ran
what it really spent is settled on the kernel's one path (a module that shortened the context books 0, never a
negative amount). The runtime, the offline evaluation (:func:`agentroute.memory.routing.route`) and the environment
(:class:`~agentroute.envs.memory_tier.MemoryTierEnv`) all go through :func:`module_options`, :func:`observation_extra`
and :func:`settle_module` here, on a real ledger, under the same point names.

What memory needs from its context is the small :class:`MemoryContext` protocol: the agent's name, the task's router,
and (optionally) the task's model path for its own model step. In a graph that is the
:class:`~agentroute.context.StepContext`: the high filter's call is then ``ctx.complete`` at point
``<agent>.memory.filter.model`` (reserved, charged, retried and traced as a ``chat`` span by the model path, so the
memory point needs that call to be affordable but does not hold it). With ``Memory.bind(ctx, llm=...)`` a callable
of yours is used instead (it must not charge anything: its cost is settled here), and offline, or for an agent
without tiers, a deterministic stand-in ranks and its tokens are settled at the call model's price.

``recall(query, tiers=...)`` offers the policy only some tiers; ``recall(query, after=first)`` is a second look
(points ``<agent>.memory.look2.<module>``); :meth:`BoundMemory.cascade` recalls, answers, and looks again at dearer
tiers while the caller's check says the answer is not good enough and the budget affords it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from agentroute.budget import Spend
from agentroute.errors import ConfigError
from agentroute.memory._pipeline import MODULE_NAMES, LLMCall, state_features
from agentroute.memory._state import TIERS, Recall, RecallState, TierOption
from agentroute.routing import Choice, Exhausted, Option, TaskRouter

T = TypeVar("T")
Tiers = str | Sequence[str] | Mapping[str, str | Sequence[str]]
"""Tiers offered: one name or several for every module, or per module (modules left out are offered every tier)."""


class MemoryContext(Protocol):
    """What a bound memory needs from where it runs (a graph step, or an offline driver)."""

    @property
    def node(self) -> str:
        """The agent the memory serves: its routing points are named after it."""
        ...

    @property
    def router(self) -> TaskRouter:
        """The task's routing kernel (its ledger, policy, history and records)."""
        ...

    def model_call(self, point: str) -> LLMCall | None:
        """The task's model path for memory's own model step at ``point`` (``None``: use the stand-in)."""
        ...


class _Memory(Protocol):
    """The parts of :class:`~agentroute.memory.Memory` a recall drives (kept apart so the two modules don't cycle)."""

    store: Any

    def start(self, query: str) -> RecallState: ...
    def plan(self, module: str, query: str, state: RecallState | None = None) -> list[TierOption]: ...
    def run_module(self, module: str, tier: str, query: str, state: RecallState | None = None,
                   llm: LLMCall | None = None) -> RecallState: ...
    def finish(self, state: RecallState) -> Recall: ...
    def usd(self, context_tokens: int, call_input: int = 0, call_output: int = 0) -> Decimal | None: ...
    def prices(self, which: str) -> tuple[Decimal, Decimal] | None: ...


def memory_point(agent: str, module: str, look: int = 1) -> str:
    """The routing point of ``module`` in ``agent``'s recall: ``<agent>.memory[.look<n>].<module>``."""
    return f"{agent}.memory.{module}" if look <= 1 else f"{agent}.memory.look{look}.{module}"


def observation_extra(memory: _Memory, module: str, state: RecallState) -> dict[str, Any]:
    """What a memory routing point tells a policy beyond the candidates: query, module, state facts."""
    info = state.info
    return {
        "query": state.query,
        "module": module,
        "module_index": MODULE_NAMES.index(module),
        "n_modules": len(MODULE_NAMES),
        "temporal": info.temporal,
        "entities": len(info.entities),
        "speakers": len(info.speakers),
        "tiers_so_far": dict(state.tiers),
        **state_features(memory.store, state),
    }


def module_options(memory: _Memory, module: str, state: RecallState, offered: Sequence[str] = TIERS, *,
                   call_elsewhere: bool = False) -> list[Option]:
    """The tiers of ``module`` as options: each needs its worst case (context plus its own call, USD and tokens).

    ``call_elsewhere``: the tier's model call goes through the task's model path, which reserves it itself, so the
    option holds only its context part.
    """
    out = []
    for o in memory.plan(module, state.query, state):
        if o.id not in offered:
            continue
        need = Spend(usd=o.cost_usd, tokens=o.tokens)
        hold = None
        if call_elsewhere and (o.call_input_tokens or o.call_output_tokens):
            ctx = max(o.context_tokens, 0)
            hold = Spend(usd=memory.usd(ctx), tokens=ctx)
        out.append(Option(o.candidate(), need, hold))
    return out


def settle_module(choice: Choice, memory: _Memory, state: RecallState, *, call_elsewhere: bool = False) -> None:
    """Settle the module just run on ``state`` on the kernel's one path (a shrunk context books 0, never less).

    ``call_elsewhere``: its model call was charged by the model path already; only the context part is settled here.
    """
    step = state.steps[-1]
    ctx_price = memory.prices("context")
    ctx_usd = None if ctx_price is None else ctx_price[0] * step.context_tokens
    tokens = step.context_tokens
    usd = ctx_usd
    if not call_elsewhere:
        tokens += step.call_input_tokens + step.call_output_tokens
        usd = None if usd is None or step.cost_usd is None else usd + step.cost_usd
    choice.settle(Spend(usd=usd, tokens=tokens))


def offered_tiers(tiers: Tiers | None, after: Recall | None = None) -> dict[str, tuple[str, ...]]:
    """Module -> tiers a recall offers its policy, cheapest first; raises :class:`ConfigError` on unknown names."""

    def names(value: str | Sequence[str], where: str) -> tuple[str, ...]:
        got = (value,) if isinstance(value, str) else tuple(value)
        bad = [t for t in got if t not in TIERS]
        if bad or not got:
            raise ConfigError(f"unknown memory tier(s) {bad or '(none given)'} for {where}", name=where,
                              hint=f"tiers: {', '.join(TIERS)}")
        return tuple(t for t in TIERS if t in got)

    if tiers is None:
        out = {m: TIERS for m in MODULE_NAMES}
    elif isinstance(tiers, Mapping):
        unknown = sorted(set(tiers) - set(MODULE_NAMES))
        if unknown:
            raise ConfigError(f"unknown memory module(s) {unknown}", name=unknown[0],
                              hint=f"modules: {', '.join(MODULE_NAMES)}")
        out = {m: names(tiers[m], m) if m in tiers else TIERS for m in MODULE_NAMES}
    else:
        every = names(tiers, "every module")
        out = {m: every for m in MODULE_NAMES}
    if after is not None:
        if not isinstance(after, Recall):
            raise ConfigError(f"after= takes the Recall of a first look, got {type(after).__name__}", name="after")
        for m, prev in after.tiers.items():
            floor = TIERS.index(prev) if prev in TIERS else 0
            kept = tuple(t for t in out[m] if TIERS.index(t) >= floor)
            if not kept:
                raise ConfigError(f"a second look at {m} offers no tier at or above the first look's {prev!r}",
                                  name=m, hint="offer a dearer tier, or leave tiers= out")
            out[m] = kept
    return out


class BoundMemory:
    """What ``ctx.memory`` is inside an agent: :meth:`recall` with tiers chosen by the task's policy."""

    __slots__ = ("_ctx", "_llm", "memory")

    def __init__(self, memory: Any, ctx: MemoryContext, llm: LLMCall | None = None) -> None:
        self.memory = memory
        self._ctx = ctx
        self._llm = llm

    def recall(self, query: str, tiers: Tiers | None = None, *, after: Recall | None = None) -> Recall:
        """The context for ``query``; each module's tier is decided, reserved and settled by the task's kernel.

        ``tiers`` limits what the policy is offered (``"high"``: every module high; ``{"retrieve": ["mid",
        "high"]}``: per module). ``after`` makes this a second look: each module is offered only tiers at or above
        the ones ``after`` used, and the policy sees ``look`` and ``previous_tiers`` in the observation. When a module
        has no affordable tier the task ends (truncated) with what it has.
        """
        state, stop = self.run(query, offered_tiers(tiers, after), after)
        if stop is not None:
            raise Exhausted(stop)
        got: Recall = self.memory.finish(state)
        return got if after is None else dataclasses.replace(got, look=after.look + 1)

    def run(self, query: str, offered: Mapping[str, Sequence[str]],
            after: Recall | None = None) -> tuple[RecallState, str | None]:
        """Drive the modules through the kernel; stop at the first module nothing is affordable for.

        Returns the state reached and ``None``, or the reason the budget gave (``"budget:usd"``, ...).
        """
        mem, ctx = self.memory, self._ctx
        router = ctx.router
        state = mem.start(query)
        look = 1 if after is None else after.look + 1
        for module in MODULE_NAMES:
            point = memory_point(ctx.node, module, look)
            llm = self._llm if self._llm is not None else ctx.model_call(point)
            elsewhere = self._llm is None and llm is not None
            extra = observation_extra(mem, module, state)
            if after is not None:
                extra.update(look=look, previous_tiers=dict(after.tiers))
            options = module_options(mem, module, state, offered[module], call_elsewhere=elsewhere)
            choice = router.decide(router.observe("memory", point, options, extra=extra))
            if choice.stop is not None:
                return state, choice.stop
            try:
                state = mem.run_module(module, str(choice.chosen), query, state, llm)
            except BaseException as e:
                choice.fail(f"{type(e).__name__}: {str(e)[:200]}")
                raise
            settle_module(choice, mem, state, call_elsewhere=elsewhere)
        return state, None

    def recall_with(self, query: str, tiers: Mapping[str, str] | str) -> Recall:
        """Every module at the tier ``tiers`` names (modules left out run low), budgeted and recorded.

        The same tiers as :meth:`Memory.recall_with`, but each module goes through the task's ledger and records.
        """
        if isinstance(tiers, str):
            return self.recall(query, tiers)
        offered_tiers(tiers)  # unknown modules or tiers: a clear error before anything runs
        return self.recall(query, {m: tiers.get(m, "low") for m in MODULE_NAMES})

    def cascade(
        self,
        query: str,
        answer: Callable[[Recall], T],
        enough: Callable[[T], bool],
        *,
        then: Tiers | None = "high",
        looks: int = 2,
    ) -> tuple[Recall, T]:
        """Recall, answer, and look again while ``enough(answer)`` says no: ``(last recall, last answer)``.

        The first look is routed by the policy. Each further look offers every module only tiers at or above the
        previous look's, limited to ``then`` (``"high"`` by default; ``None`` lets the policy choose among them). A
        look the budget cannot afford ends the cascade with the answer already in hand, so a task never loses it.
        Sync twin of :meth:`acascade`.
        """
        steps = self._looks(query, enough, then, looks)
        recall = next(steps)
        while True:
            try:
                recall = steps.send(answer(recall))
            except StopIteration as done:
                result: tuple[Recall, T] = done.value
                return result

    async def acascade(
        self,
        query: str,
        answer: Callable[[Recall], Awaitable[T]],
        enough: Callable[[T], bool],
        *,
        then: Tiers | None = "high",
        looks: int = 2,
    ) -> tuple[Recall, T]:
        """:meth:`cascade` for async agents: ``answer`` is awaited (for example ``ctx.acomplete``)."""
        steps = self._looks(query, enough, then, looks)
        recall = next(steps)
        while True:
            try:
                recall = steps.send(await answer(recall))
            except StopIteration as done:
                result: tuple[Recall, T] = done.value
                return result

    def _looks(
        self, query: str, enough: Callable[[T], bool], then: Tiers | None, looks: int
    ) -> Generator[Recall, T, tuple[Recall, T]]:
        """The cascade's looks: yields each recall, receives its answer, returns the last of both."""
        if looks < 1:
            raise ConfigError(f"looks={looks} must be at least 1", name="looks")
        recall = self.recall(query)
        reply = yield recall
        for _ in range(looks - 1):
            if enough(reply) or all(t == TIERS[-1] for t in recall.tiers.values()):
                break
            try:
                state, stop = self.run(query, offered_tiers(then, recall), recall)
            except Exhausted:  # the look's own model step found nothing affordable
                break
            if stop is not None:
                break  # unaffordable: keep what we have (what the partial look spent is already settled)
            recall = dataclasses.replace(self.memory.finish(state), look=recall.look + 1)
            reply = yield recall
        return recall, reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memory, name)

    def __repr__(self) -> str:
        return f"BoundMemory({self.memory!r})"


__all__ = ["BoundMemory", "MemoryContext", "memory_point", "module_options", "observation_extra", "offered_tiers",
           "settle_module"]
