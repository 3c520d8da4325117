"""The values a recall passes between its modules, and what it hands back.

A recall is a fold over the pipeline: ``Memory.start(query)`` makes the first :class:`RecallState`, each
``Memory.run_module(module, tier, ...)`` returns a new one (states are frozen, so a runtime may keep any of them), and
``Memory.finish(state)`` renders the :class:`Recall` an agent reads. :class:`TierOption` is what ``Memory.plan``
offers at each module: one per tier, with its worst-case tokens and USD, which is what the runtime reserves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from agentroute.routing import Candidate

TIERS: tuple[str, ...] = ("low", "mid", "high")
"""The budget tiers every module offers, cheapest first (their ``rank`` is their index)."""


@dataclass(frozen=True, slots=True)
class MemoryModule:
    """One stage of the pipeline and what each of its tiers does."""

    name: str
    description: str
    methods: Mapping[str, str]
    """Tier id -> the method it runs (shown to policies as the candidate's ``descriptor["method"]``)."""


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """What the memory reads from a query once: search terms, named entities, speakers named, temporal or not."""

    text: str
    terms: tuple[str, ...]
    entities: tuple[str, ...]
    speakers: tuple[str, ...]
    temporal: bool


@dataclass(frozen=True, slots=True)
class StepSpend:
    """What one module spent: context tokens it added (negative when it shortened the context) and its call."""

    module: str
    tier: str
    context_tokens: int
    call_input_tokens: int
    call_output_tokens: int
    cost_usd: Decimal | None
    seconds: float


@dataclass(frozen=True, slots=True)
class TierOption:
    """One tier of one module, as ``Memory.plan`` offers it: worst-case tokens and USD, and its method.

    ``context_tokens`` is the most context the tier can add for the answering agent; ``call_input_tokens`` and
    ``call_output_tokens`` bound its own model call (0 for tiers without one). ``cost_usd`` prices the three at the
    memory's prices (``None`` when a price is unknown); it is the amount to reserve.
    """

    id: str
    rank: int
    module: str
    context_tokens: int
    call_input_tokens: int
    call_output_tokens: int
    cost_usd: Decimal | None
    descriptor: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Worst-case tokens in all (context plus call)."""
        return max(self.context_tokens, 0) + self.call_input_tokens + self.call_output_tokens

    def candidate(self) -> Candidate:
        """Return this option as a routing :class:`~agentroute.routing.Candidate` of kind ``"memory"``."""
        return Candidate(
            id=self.id,
            kind="memory",
            rank=self.rank,
            cost_estimate=self.cost_usd,
            latency_estimate=float(self.descriptor.get("latency_s", 0.0)),
            descriptor={**self.descriptor, "tokens": self.tokens},
        )


@dataclass(frozen=True, slots=True)
class RecallState:
    """Where a recall stands between modules. Frozen: every module returns a new state."""

    query: str
    info: QueryInfo
    pool: tuple[int, ...] = ()
    """Candidate turns (indices), best first, as the retrieve module ranked them."""
    pool_scores: tuple[float, ...] = ()
    selected: tuple[int, ...] = ()
    """Turns that go into the context, best first."""
    added: tuple[int, ...] = ()
    """Turns the link module added around the selected ones."""
    stamp: bool = False
    """Render each turn with its session date."""
    notes: bool = False
    """Render relative time phrases resolved to dates (``yesterday = 7 May 2023``)."""
    context_tokens: int = 0
    call_input_tokens: int = 0
    call_output_tokens: int = 0
    call_cost_usd: Decimal | None = Decimal(0)
    steps: tuple[StepSpend, ...] = ()

    @property
    def tiers(self) -> dict[str, str]:
        """Module -> tier chosen so far."""
        return {s.module: s.tier for s in self.steps}

    @property
    def done(self) -> tuple[str, ...]:
        """Modules run so far, in order."""
        return tuple(s.module for s in self.steps)

    def evolve(self, **changes: Any) -> RecallState:
        """A copy with ``changes``."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Recall:
    """What a recall hands to the agent: the context (turn ids and text) and what it cost.

    ``cost_usd`` = context tokens at the answering model's input price + the memory's own calls at their prices
    (``None`` when a price is unknown). ``context_tokens`` is approximate (see :func:`approx_tokens`).
    """

    query: str
    ids: tuple[str, ...]
    text: str
    context_tokens: int
    call_input_tokens: int
    call_output_tokens: int
    cost_usd: Decimal | None
    tiers: Mapping[str, str]
    steps: tuple[StepSpend, ...] = ()
    look: int = 1
    """1 for a first recall; ``n + 1`` for a second look made with ``after=`` a recall of look ``n``."""

    @property
    def tokens(self) -> int:
        """Every token this recall costs: context handed over plus the memory's own calls."""
        return self.context_tokens + self.call_input_tokens + self.call_output_tokens

    def __str__(self) -> str:
        return self.text
