"""FrugalGPT-style cascades: try the cheapest tier first, escalate while a scorer says the answer is not good enough.

The runtime asks ``accept(obs, decision, reply)`` after each answer; a rejected answer makes the runtime mask that
tier ("tried") and ask again, so the next decision is the next-cheapest affordable tier, within the budget. When no
stronger tier is affordable, the last answer stands. Other routing points (agents, memory) go to ``base``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, register
from agentroute.policies.baselines import DeclaredDefault
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase, one_hot

_HEDGES = re.compile(r"\b(i'?m not sure|i don'?t know|cannot answer|can'?t help|unsure)\b", re.I)

if TYPE_CHECKING:
    import numpy as np


def default_scorer(reply: Any) -> float:
    """Score a reply in [0, 1]: the provider's quality signal, else a crude check for empty or hedged answers.

    Simulated worlds report quality; real deployments should pass a scorer of their own (a verifier, a judge
    model, a regex).
    """
    q = getattr(reply, "quality", None)
    if q is not None:
        return float(q)
    text = str(getattr(reply, "text", "") or "").strip()
    if not text or _HEDGES.search(text):
        return 0.0
    return 0.5 if getattr(reply, "finish_reason", None) == "length" else 1.0


@register("cascade", "cascade")
class CascadePolicy(PolicyBase):
    """Cheapest model tier first; escalate to the next one while ``scorer(reply) < threshold``."""

    family = "cascade"
    kind = "cascade"
    name = "cascade"

    def __init__(self, scorer: Callable[[Any], float] | None = None, *, threshold: float = 0.6,
                 base: PolicyBase | None = None) -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"CascadePolicy threshold={threshold!r} must be in [0, 1]", name="threshold")
        self.scorer = scorer or default_scorer
        self.threshold = float(threshold)
        self.base = base or DeclaredDefault()

    def bind(self, spec: GraphSpec) -> None:
        """Check the base policy too."""
        self.base.bind(spec)

    def decide(self, obs: Observation) -> Decision:
        """Cheapest untried tier for model calls; the base policy elsewhere."""
        if obs.kind != "model":
            return self.base.decide(obs)
        c = min(obs.candidates, key=lambda x: x.rank)
        tried = [m.id for m in obs.masked if m.reason.startswith("tried")]
        why = f"escalated past {', '.join(tried)}" if tried else "cheapest tier first"
        return Decision(c.id, one_hot(obs, c.id), reason=f"cascade: {why} -> {c.id}")

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """Keep the answer when its score reaches the threshold."""
        return self.scorer(reply) >= self.threshold

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Threshold and base (only with the default scorer: a function is not saved)."""
        if self.scorer is not default_scorer:
            raise ConfigError("cannot save a CascadePolicy with a custom scorer (a function)", name="scorer",
                              hint="rebuild it in code: CascadePolicy(scorer, threshold=...)")
        arrays: dict[str, np.ndarray] = {}
        return {"threshold": self.threshold, "base": nested_card(self.base, "base", arrays)}, arrays

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> CascadePolicy:
        """Restore threshold and base (with the default scorer)."""
        return cls(threshold=card.num("threshold", lo=0.0, hi=1.0), base=load_nested(card, "base", arrays, None))
