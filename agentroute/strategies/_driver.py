"""One model call of a strategy, through the kernel: offer → take → reserve the worst case → call → commit.

Every strategy (ACAR, fan-out, the LLM router, the cache) calls models through :class:`Caller`, so each call is a
routing point of the task's :class:`~agentroute.routing.TaskRouter`: the tier is offered with its worst case (masked
with the kernel's ``budget:<dim>`` reason when it does not fit), the strategy's own decision is *taken* (with its
propensity and evidence), the worst case is reserved before the call and the real cost committed after it, and the
decision is recorded. A strategy never spends past the task's budget: a call that does not fit is not made.

The worst case of a call: the provider's own bound when it has one (``Recorded.worst_case``: the dearest recording
of the model in the task's category), else the tier's prices times the counted input and ``max_tokens``; an unknown
price is unknown (``None``), never 0. The cost booked: the provider's own figure when it reports one
(``Recorded.cost_of``: the recorded USD), else the usage times the tier's prices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentroute import llm
from agentroute.budget import Spend
from agentroute.errors import ConfigError, NotRecorded, ProviderError
from agentroute.providers._handler import cause
from agentroute.routing import Candidate, Choice, Decision, Option, TaskRouter

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call of a strategy returned."""

    tier: str
    text: str
    cost_usd: Decimal | None
    tokens: int
    quality: float | None = None
    """The provider's quality signal (a recorded grade, a simulated quality); strategies never decide on it."""


@dataclass
class Outcome:
    """What a strategy made of one task: its final answer, who voiced it, what it cost, and how it got there."""

    text: str | None
    tier: str | None
    quality: float | None
    cost_usd: Decimal | None
    calls: int
    truncated: bool = False
    """True when the budget stopped a call the strategy wanted (``refused`` says which)."""
    refused: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Caller:
    """Calls ``tiers`` (by name) for one task through ``router`` and ``provider`` (see the module docstring)."""

    router: TaskRouter
    tiers: Mapping[str, llm.ModelTier]
    provider: Any
    max_tokens: int = 4096
    """The longest answer asked of any call (each tier's own ``max_tokens`` caps it further)."""
    answers: list[Answer] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """``point:tier: reason`` of every call the budget did not allow."""

    def outcome(self, final: Answer | None, evidence: Mapping[str, Any] | None = None) -> Outcome:
        """The task's :class:`Outcome` with ``final`` as its answer; cost is the sum of every call's cost."""
        costs = [a.cost_usd for a in self.answers]
        total = None if any(c is None for c in costs) else sum((c for c in costs if c is not None), Decimal(0))
        return Outcome(None if final is None else final.text, None if final is None else final.tier,
                       None if final is None else final.quality, total, len(self.answers), bool(self.refused),
                       tuple(self.refused), dict(evidence or {}))

    def tier(self, name: str) -> llm.ModelTier:
        """The tier called ``name`` (:class:`ConfigError` naming the known ones otherwise)."""
        t = self.tiers.get(name)
        if t is None:
            raise ConfigError(f"no tier named {name!r}", name=name, hint=f"tiers: {', '.join(self.tiers)}")
        return t

    def worst(self, name: str, messages: Messages | None = None) -> Decimal | None:
        """The worst-case USD of one call of tier ``name`` (``None``: unknown)."""
        t = self.tier(name)
        bound = getattr(self.provider, "worst_case", None)
        got: Decimal | None = None if bound is None else bound(t.model, self.router.task.category)
        if got is not None:
            return got
        prices = t.prices()
        if prices is None:
            return None
        n_in = llm.rough_tokens(messages or [{"content": self.router.task.text}])
        return prices[0] * n_in + prices[1] * self.max_tokens

    def option(self, name: str, *, rank: int = 0, descriptor: Mapping[str, Any] | None = None,
               messages: Messages | None = None) -> Option:
        """Tier ``name`` as an option needing (and holding) its worst case."""
        t = self.tier(name)
        w = self.worst(name, messages)
        prices = t.prices()
        cand = Candidate(name, "model", rank=rank, cost_estimate=w,
                         input_price=None if prices is None else prices[0],
                         output_price=None if prices is None else prices[1],
                         descriptor={"model": t.model, "description": t.description, **(descriptor or {})})
        return Option(cand, Spend(usd=w))

    def take(self, point: str, name: str, *, reason: str, evidence: Mapping[str, Any] | None = None,
             probability: float = 1.0, options: Sequence[Option] | None = None) -> Choice | None:
        """Offer ``options`` (default: tier ``name`` alone) at ``point``, take ``name``; ``None``: unaffordable."""
        opts = list(options) if options is not None else [self.option(name)]
        pending = self.router.observe("model", point, opts)
        if name not in pending.options:
            why = next((m.reason for m in pending.observation.masked if m.id == name), "not offered")
            self.refused.append(f"{point}:{name}: {why}")
            return None
        probs = {c.id: (probability if c.id == name else 0.0) for c in pending.observation.candidates}
        if probability < 1.0 and len(probs) > 1:  # the rest of the mass, spread evenly over the others
            rest = (1.0 - probability) / (len(probs) - 1)
            probs = {k: (v if k == name else rest) for k, v in probs.items()}
        choice = self.router.take(pending, Decision(name, probs, reason=reason, evidence=dict(evidence or {})))
        if choice.stop is not None:
            self.refused.append(f"{point}:{name}: {choice.stop}")
            return None
        return choice

    def _kwargs(self, name: str, messages: Messages) -> dict[str, Any]:
        t = self.tier(name)
        return llm.call_kwargs(self.provider.kwargs_for(t), messages, min(self.max_tokens, t.max_tokens), t.timeout)

    def _settle(self, choice: Choice, name: str, raw: llm.RawReply | None, exc: BaseException | None) -> Answer | None:
        if raw is None:
            assert exc is not None
            choice.fail(f"{type(exc).__name__}: {str(exc)[:200]}")
            missing = cause(exc, NotRecorded)
            if missing is not None:
                raise missing
            raise ProviderError(f"{name}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        t = self.tier(name)
        own = getattr(self.provider, "cost_of", None)
        cost = own(raw) if own is not None else None
        if cost is None:
            cost = llm.cost_of(t.prices(), raw.input_tokens, raw.output_tokens)
        tokens = raw.input_tokens + raw.output_tokens
        choice.commit(Spend(usd=cost, tokens=tokens))
        quality = self.provider.quality_of(raw)
        choice.close(quality=quality, feedback=False)
        a = Answer(name, raw.text, cost, tokens, quality)
        self.answers.append(a)
        return a

    def call(self, choice: Choice, messages: Messages) -> Answer | None:
        """Run the taken ``choice`` (reserved) on ``messages``; commit what it cost and record it."""
        name = str(choice.chosen)
        try:
            raw = llm.complete(self._kwargs(name, messages))
        except Exception as e:  # every failure of the call is booked, then reported
            return self._settle(choice, name, None, e)
        return self._settle(choice, name, raw, None)

    async def acall(self, choice: Choice, messages: Messages) -> Answer | None:
        """The async twin of :meth:`call`."""
        name = str(choice.chosen)
        try:
            raw = await llm.acomplete(self._kwargs(name, messages))
        except Exception as e:  # every failure of the call is booked, then reported
            return self._settle(choice, name, None, e)
        return self._settle(choice, name, raw, None)

    def gather(self, choices: Sequence[Choice], messages: Messages) -> list[Answer | None]:
        """Run already reserved ``choices`` in parallel (LiteLLM's async path on an event loop of its own).

        Called where an event loop is already running (a sync agent inside an async run), they run one after the
        other instead: the same calls, reservations and records, without the overlap. Every call settles (commit or
        release) before the failure of one is raised.
        """
        try:
            asyncio.get_running_loop()
            running = True
        except RuntimeError:
            running = False
        if running or len(choices) < 2:
            return [self.call(c, messages) for c in choices]

        async def run() -> list[Answer | BaseException | None]:
            return list(await asyncio.gather(*(self.acall(c, messages) for c in choices), return_exceptions=True))

        got = asyncio.run(run())
        failed = next((g for g in got if isinstance(g, BaseException)), None)
        if failed is not None:
            raise failed
        return [g for g in got if not isinstance(g, BaseException)]


class ByModel:
    """One provider per model (``routes``), another for the rest: a router model scripted, the workers recorded."""

    name = "by-model"

    def __init__(self, routes: Mapping[str, Any], default: Any) -> None:
        self.routes = dict(routes)
        self.default = default

    def _of(self, model: str) -> Any:
        return self.routes.get(model, self.default)

    def bind(self, tiers: Sequence[llm.ModelTier]) -> None:
        """Bind each provider to its own tiers."""
        for p in {id(p): p for p in [*self.routes.values(), self.default]}.values():
            p.bind([t for t in tiers if self._of(t.model) is p])

    def kwargs_for(self, tier: llm.ModelTier) -> dict[str, Any]:
        """The call's arguments, from the provider serving ``tier``'s model."""
        out: dict[str, Any] = self._of(tier.model).kwargs_for(tier)
        return out

    def provider_name(self, tier: llm.ModelTier) -> str:
        """The provider name of the provider serving ``tier``."""
        return str(self._of(tier.model).provider_name(tier))

    def _ask(self, what: str, reply: llm.RawReply) -> Any:
        for p in [*self.routes.values(), self.default]:
            f = getattr(p, what, None)
            got = None if f is None else f(reply)
            if got is not None:
                return got
        return None

    def quality_of(self, reply: llm.RawReply) -> float | None:
        """The quality signal of whichever provider produced ``reply``."""
        got: float | None = self._ask("quality_of", reply)
        return got

    def cost_of(self, reply: llm.RawReply) -> Decimal | None:
        """The provider's own cost of ``reply``, when it reports one."""
        got: Decimal | None = self._ask("cost_of", reply)
        return got

    def worst_case(self, model: str, category: str | None = None) -> Decimal | None:
        """The serving provider's own worst case for ``model``, when it has one."""
        f = getattr(self._of(model), "worst_case", None)
        got: Decimal | None = None if f is None else f(model, category)
        return got


def messages_for(text: str, system: str | None = None) -> list[dict[str, str]]:
    """The messages a strategy sends for a task: an optional system message and the task's text."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


__all__ = ["Answer", "ByModel", "Caller", "Outcome", "messages_for"]
