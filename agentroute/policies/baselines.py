"""Baselines to compare against: Random, Cheapest, Strongest and Fixed.

"Cheapest" and "strongest" follow each candidate's ``rank`` (0 = cheapest), which the runtime sets from prices for
model tiers, from method cost for memory tiers, and from the agents' cheapest tier for agent choices (``__end__``,
stopping, is always the cheapest agent choice). Each saves as a small card (family ``baseline``): ``Random`` keeps its
seed and random state, ``Fixed`` its choice and fallback.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, py_rng_from, py_rng_state, register
from agentroute.routing import Candidate, Decision, GraphSpec, Observation, PolicyBase, one_hot

if TYPE_CHECKING:
    import numpy as np


def _by_rank(c: Candidate) -> tuple[int, float]:
    return (c.rank, float(c.cost_estimate) if c.cost_estimate is not None else 0.0)


class _Baseline(PolicyBase):
    """A baseline without state: its card is its kind."""

    family: ClassVar[str] = "baseline"
    kind: ClassVar[str] = "baseline"

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """No fields beyond the kind."""
        return {}, {}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> PolicyBase:
        """A fresh one."""
        return cls()


@register("baseline", "random")
class Random(_Baseline):
    """Uniformly random among the affordable candidates; ``seed`` makes it reproducible."""

    kind = "random"
    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The seed and the random state (a loaded copy continues the same stream)."""
        return {"seed": self.seed, "rng": py_rng_state(self._rng)}, {}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> Random:
        """Restore seed and random state."""
        r = cls(card.whole("seed", None, lo=-(2**63), hi=2**63))
        r._rng = py_rng_from(card, "rng", r.seed)
        return r

    def decide(self, obs: Observation) -> Decision:
        """Pick uniformly at random."""
        ids = obs.ids
        chosen = ids[self._rng.randrange(len(ids))]
        p = 1.0 / len(ids)
        return Decision(chosen, {i: p for i in ids}, reason=f"uniform over {len(ids)} candidates", explored=True)


@register("baseline", "cheapest")
class Cheapest(_Baseline):
    """Always the cheapest affordable candidate."""

    kind = "cheapest"
    name = "cheapest"

    def decide(self, obs: Observation) -> Decision:
        """Pick the lowest rank."""
        c = min(obs.candidates, key=_by_rank)
        return Decision(c.id, one_hot(obs, c.id), reason=f"cheapest affordable: {c.id}")


@register("baseline", "strongest")
class Strongest(_Baseline):
    """Always the strongest (most expensive) affordable candidate."""

    kind = "strongest"
    name = "strongest"

    def decide(self, obs: Observation) -> Decision:
        """Pick the highest rank."""
        c = max(obs.candidates, key=_by_rank)
        return Decision(c.id, one_hot(obs, c.id), reason=f"strongest affordable: {c.id}")


@register("baseline", "fixed")
class Fixed(_Baseline):
    """Always ``choice`` where it is an affordable candidate; elsewhere defer to ``fallback``.

    ``Fixed("large")`` pins the model tier; agent and memory choices go to ``fallback`` (the graph's declared
    default route by default: the first target given to ``graph.route``).
    """

    kind = "fixed"
    name = "fixed"

    def __init__(self, choice: str, *, fallback: PolicyBase | None = None) -> None:
        if not isinstance(choice, str) or not choice:
            raise ConfigError("Fixed needs the id of a candidate, e.g. Fixed('large')", name="choice")
        self.choice = choice
        self.fallback = fallback or DeclaredDefault()
        self.name = f"fixed:{choice}"

    def bind(self, spec: GraphSpec) -> None:
        """The choice must exist somewhere in the graph."""
        if self.choice not in spec.ids():
            raise ConfigError(
                f"Fixed({self.choice!r}): no agent, tier or memory tier is called {self.choice!r}",
                name=self.choice,
                hint=f"known: {', '.join(sorted(spec.ids()))}",
            )
        self.fallback.bind(spec)

    def decide(self, obs: Observation) -> Decision:
        """Pick the fixed choice, or defer."""
        if obs.candidate(self.choice) is not None:
            return Decision(self.choice, one_hot(obs, self.choice), reason=f"fixed: {self.choice}")
        d = self.fallback.decide(obs)
        why = next((m.reason for m in obs.masked if m.id == self.choice), "not a candidate here")
        return Decision(d.chosen, d.probabilities, reason=f"{self.choice} {why}; {d.reason}", scores=d.scores)

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The choice and the fallback's card."""
        arrays: dict[str, np.ndarray] = {}
        return {"choice": self.choice, "fallback": nested_card(self.fallback, "fallback", arrays)}, arrays

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> Fixed:
        """Restore the choice and the fallback."""
        return cls(card.text("choice"), fallback=load_nested(card, "fallback", arrays, None))


@register("baseline", "declared-default")
class DeclaredDefault(_Baseline):
    """The graph's own default: the candidate marked ``default`` (first declared route target), else the first."""

    kind = "declared-default"
    name = "declared-default"

    def decide(self, obs: Observation) -> Decision:
        """Pick the declared default."""
        c = next((c for c in obs.candidates if c.descriptor.get("default")), obs.candidates[0])
        return Decision(c.id, one_hot(obs, c.id), reason=f"declared default: {c.id}")
