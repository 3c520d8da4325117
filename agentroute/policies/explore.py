"""Exploration with recorded propensities: the logging policies off-policy evaluation and ``fit --logged`` need.

:class:`EpsilonGreedy` follows a base policy and, with probability ``epsilon``, takes an offered option uniformly
at random instead. The decision's probabilities are the true mixture (``(1 − ε)·base + ε/k``), so every offered
option has a propensity of at least ``ε/k``: logs written under it cover any target policy.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, py_rng_from, py_rng_state, register
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase
from agentroute.routing._policy import Policy

if TYPE_CHECKING:
    import numpy as np


@register("explore", "epsilon-greedy")
class EpsilonGreedy(PolicyBase):
    """``base`` with probability ``1 − epsilon``, a uniformly random offered option otherwise."""

    family: ClassVar[str] = "explore"
    kind: ClassVar[str] = "epsilon-greedy"

    def __init__(self, base: Any, epsilon: float = 0.2, *, seed: int | None = None) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 < float(epsilon) <= 1:
            raise ConfigError(f"epsilon={epsilon!r} must be in (0, 1]", name="epsilon")
        self.base = base
        self._base = base if isinstance(base, Policy) else Policy(base)
        self.epsilon = float(epsilon)
        self.seed = seed
        self._rng = random.Random(seed)
        self.name = f"explore:{self._base.name}"
        self.version = self._base.version

    def bind(self, spec: GraphSpec) -> None:
        """The base policy is checked against the graph."""
        self._base.bind(spec)

    def decide(self, obs: Observation) -> Decision:
        """The base's choice, or a uniform one; probabilities are the mixture of both."""
        d = self._base.decide(obs)
        ids = obs.ids
        k = len(ids)
        probs = {i: (1 - self.epsilon) * float(d.probabilities.get(i, 0.0)) + self.epsilon / k for i in ids}
        if self._rng.random() < self.epsilon:
            chosen = ids[self._rng.randrange(k)]
            return Decision(chosen, probs, reason=f"explored (ε={self.epsilon:g}): {chosen}", scores=d.scores,
                            explored=True, evidence=d.evidence)
        return Decision(d.chosen, probs, reason=d.reason, scores=d.scores, explored=d.explored, evidence=d.evidence)

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """ε, the seed, the random state and the base's card."""
        arrays: dict[str, np.ndarray] = {}
        return ({"epsilon": self.epsilon, "seed": self.seed, "rng": py_rng_state(self._rng),
                 "base": nested_card(self.base, "base", arrays)}, arrays)

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> EpsilonGreedy:
        """Restore ε, the random stream and the base."""
        p = cls(load_nested(card, "base", arrays), card.num("epsilon", lo=0.0, hi=1.0),
                seed=card.whole("seed", None, lo=-(2**63), hi=2**63))
        p._rng = py_rng_from(card, "rng", p.seed)
        return p


__all__ = ["EpsilonGreedy"]
