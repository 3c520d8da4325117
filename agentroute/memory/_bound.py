"""A memory bound to one agent step: every module's tier is a routing point of the task (``ctx.route``).

``ctx.memory.recall(query)`` runs the pipeline module by module. At each module the runtime masks the tiers the
budget cannot afford, asks the task's policy (``kind="memory"``, point ``<agent>.memory.<module>``), reserves the
chosen tier's worst case (USD and tokens), and after the module ran this class settles what it really spent. A
module that shortened the context (the filter) settles 0, never a negative amount, so the ledger stays conservative.

``recall(query, tiers=...)`` offers the policy only some tiers (``"high"`` fixes every module); ``recall(query,
after=first)`` is a second look, offering each module only tiers at or above the ones the first recall used (its
points are ``<agent>.memory.look2.<module>``, so traces tell the looks apart).
:meth:`BoundMemory.cascade` runs the usual pattern: recall, answer, and look again at dearer tiers while the caller's
check says the answer is not good enough and the budget affords it. Every look is budgeted like the first.

The high filter's model call goes through ``llm`` when one is given (``Memory.bind(ctx, llm=...)``); the callable
must not charge the ledger itself, its cost is settled here. Without one, a deterministic stand-in ranks, and its
tokens are settled at the call model's price, exactly as evaluation and the environment count them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from agentroute._loop import Stop
from agentroute.budget import Spend
from agentroute.errors import ConfigError
from agentroute.memory._pipeline import MODULE_NAMES, LLMCall
from agentroute.memory._state import TIERS, Recall

if TYPE_CHECKING:
    from agentroute.memory._memory import Memory

T = TypeVar("T")
Tiers = str | Sequence[str] | Mapping[str, str | Sequence[str]]
"""Tiers offered: one name or several for every module, or per module (modules left out are offered every tier)."""


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

    def __init__(self, memory: Memory, ctx: Any, llm: LLMCall | None = None) -> None:
        self.memory = memory
        self._ctx = ctx
        self._llm = llm

    def recall(self, query: str, tiers: Tiers | None = None, *, after: Recall | None = None) -> Recall:
        """The context for ``query``; each module's tier is decided, reserved and settled by the runtime.

        ``tiers`` limits what the policy is offered (``"high"``: every module high; ``{"retrieve": ["mid",
        "high"]}``: per module). ``after`` makes this a second look: each module is offered only tiers at or above
        the ones ``after`` used, and the policy sees ``look`` and ``previous_tiers`` in the observation.
        """
        from agentroute.memory.routing import observation_extra

        mem, ctx = self.memory, self._ctx
        offered = offered_tiers(tiers, after)
        state = mem.start(query)
        agent = getattr(getattr(ctx, "agent", None), "name", "agent")
        n = 1 if after is None else after.look + 1
        point = f"{agent}.memory" if after is None else f"{agent}.memory.look{n}"
        for module in MODULE_NAMES:
            options = [o for o in mem.plan(module, query, state) if o.id in offered[module]]
            extra = observation_extra(mem, module, state)
            if after is not None:
                extra.update(look=n, previous_tiers=dict(after.tiers))
            choice = ctx.route("memory", f"{point}.{module}", [o.candidate() for o in options], extra=extra)
            try:
                state = mem.run_module(module, choice.chosen, query, state, self._llm)
            except Exception as e:
                choice.fail(f"{type(e).__name__}: {str(e)[:200]}")
                raise
            step = state.steps[-1]
            usd = mem.step_cost(state)
            tokens = max(0, step.context_tokens) + step.call_input_tokens + step.call_output_tokens
            choice.settle(Spend(usd=None if usd is None else max(usd, Decimal(0)), tokens=tokens))
        got = mem.finish(state)
        return got if after is None else dataclasses.replace(got, look=n)

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
                recall_next = self.recall(query, then, after=recall)
            except Stop:
                break  # unaffordable: keep what we have (what the partial look spent is already settled)
            recall = recall_next
            reply = yield recall
        return recall, reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memory, name)

    def __repr__(self) -> str:
        return f"BoundMemory({self.memory!r})"
