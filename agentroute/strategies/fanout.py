"""Fan-out and refine: a routing point picks a *set* of up to ``k`` agents, they answer in parallel, a refine merges.

``FanOut(agents, k=3)`` runs a task in three moves, every call a routing point of the task's kernel:

1. **Pick a set** by descriptor scores: each agent is a :class:`Descriptor` (a tier name, a free-text
   ``description``, optional ``examples`` of tasks it is good at, a ``prior`` quality and a price). A task's score
   for an agent is ``prior + similarity·weight − cost_weight·worst_case`` where ``similarity`` is the cosine, under
   agentroute's offline featurizer (:class:`~agentroute.features.HashingFeaturizer`, or any fitted featurizer), between
   the task's text and the agent's description and examples (the mean of the ``top`` most similar). The featurizer is
   fitted once on task texts; **an agent added later with a description is scored with no retraining**: its
   description is only transformed.
2. **Reserve every member first.** The set is picked as ``k`` ordered picks, each a decision at ``fanout.pick<i>``
   among the agents not yet picked, whose worst case is reserved when taken (an unaffordable agent is masked with the
   kernel's ``budget:usd`` reason). Only when every member is reserved do they run, in parallel.
3. **Refine**: the answers are merged by agreement (:func:`~agentroute.strategies._answers.vote`, each answer
   weighing its agent's score rank; ties to the best-scored agent), or by ``refine=callable(task_text, answers)``
   returning the index of the answer to keep. (An LLM refiner that writes a new answer is a live-provider option: a
   recorded replay holds no answer to a merge prompt.)

**Propensities for sets (Plackett–Luce).** With ``temperature`` τ > 0 the picks are sampled without replacement,
each with probability ``exp(s_j/τ) / Σ_{l not yet picked} exp(s_l/τ)`` over the affordable agents; each pick's record
carries that distribution, so the propensity of the ordered set is the product of its picks' propensities (the
Plackett–Luce probability) and of the unordered set the sum over its orders. ``τ = 0`` (default) picks the top-k
deterministically (each propensity 1). Every record is a plain single-choice decision, so the traces feed the
off-policy estimators unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.routing import Decision
from agentroute.strategies._answers import extract, family_of, question_of, vote
from agentroute.strategies._driver import Answer, Caller, Outcome, messages_for

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable
    from agentroute.features import Featurizer

PICK = "fanout.pick"


@dataclass(frozen=True)
class Descriptor:
    """An agent as the fan-out sees it: the tier it calls and what it is said to be good at."""

    tier: str
    description: str = ""
    examples: Sequence[str] = ()
    """Tasks it is good at (their texts); compared to a task like the description."""
    prior: float = 0.5
    """Expected quality in [0, 1] on a typical task."""


def plackett_luce(scores: Sequence[float], temperature: float) -> np.ndarray:
    """The first-pick distribution of Plackett–Luce over ``scores`` (one-hot on the top score when τ = 0)."""
    s = np.asarray(scores, dtype=np.float64)
    if temperature <= 0:
        p = np.zeros(len(s))
        p[int(np.argmax(s))] = 1.0
        return p
    z = np.exp((s - s.max()) / temperature)
    return np.asarray(z / z.sum())


def set_propensity(picks: Sequence[str], scores: Mapping[str, float], temperature: float) -> float:
    """Plackett–Luce probability of the ordered ``picks`` among the agents of ``scores``."""
    left = list(scores)
    p = 1.0
    for a in picks:
        dist = plackett_luce([scores[x] for x in left], temperature)
        p *= float(dist[left.index(a)])
        left.remove(a)
    return p


@dataclass
class FanOut:
    """Fan-out and refine over ``agents`` (see the module docstring for every parameter's role)."""

    agents: Sequence[Descriptor]
    k: int = 3
    featurizer: Featurizer | None = None
    """A fitted featurizer; ``None``: a :class:`~agentroute.features.HashingFeaturizer` fitted by :meth:`fit`."""
    similarity_weight: float = 1.0
    cost_weight: float = 0.0
    """Score given up per USD of an agent's worst case."""
    temperature: float = 0.0
    top: int = 5
    refine: Callable[[str, Sequence[str]], int] | None = None
    seed: int = 0
    name: str = "fanout"
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"FanOut: k must be >= 1, got {self.k}", name="k")
        names = [a.tier for a in self.agents]
        if not names or len(set(names)) != len(names):
            raise ConfigError("FanOut needs agents with distinct tiers", name="agents")
        if self.temperature < 0:
            raise ConfigError("FanOut: temperature must be >= 0", name="temperature")
        self._rng = np.random.default_rng(self.seed)

    @property
    def tiers(self) -> tuple[str, ...]:
        """Every tier the fan-out may call."""
        return tuple(a.tier for a in self.agents)

    def fit(self, texts: Sequence[str]) -> FanOut:
        """Fit the featurizer on task texts (only the featurizer: agents are scored from their descriptors)."""
        from agentroute.features import HashingFeaturizer

        if self.featurizer is None:
            self.featurizer = HashingFeaturizer(n_features=4096, use_category=False)
        self.featurizer.fit([question_of(t) for t in texts])
        self._vectors.clear()
        return self

    def add(self, agent: Descriptor) -> FanOut:
        """Add an agent by its descriptor: routable at once, nothing is refitted."""
        if agent.tier in self.tiers:
            raise ConfigError(f"FanOut: an agent calling {agent.tier!r} is already there", name=agent.tier)
        self.agents = [*self.agents, agent]
        return self

    def _agent_vectors(self, a: Descriptor) -> np.ndarray:
        v = self._vectors.get(a.tier)
        if v is None:
            assert self.featurizer is not None
            texts = [a.description, *(question_of(e) for e in a.examples)] if a.description else \
                [question_of(e) for e in a.examples] or [a.tier]
            v = self._vectors[a.tier] = self.featurizer.transform(texts)
        return v

    def scores(self, text: str, worst: Mapping[str, Decimal | None] | None = None) -> dict[str, float]:
        """Each agent's score for the task ``text`` (see the module docstring)."""
        if self.featurizer is None:
            raise ConfigError("FanOut: fit(texts) first (or pass a fitted featurizer)", name="featurizer")
        q = self.featurizer.transform([question_of(text)])[0]
        out = {}
        for a in self.agents:
            sims = np.sort(self._agent_vectors(a) @ q)[::-1][: self.top]
            w = (worst or {}).get(a.tier)
            penalty = self.cost_weight * float(w) if w is not None else 0.0
            out[a.tier] = float(a.prior + self.similarity_weight * float(sims.mean()) - penalty)
        return out

    # -- one task through the kernel ------------------------------------------------------------------------------
    def run(self, caller: Caller, text: str | None = None) -> Outcome:
        """Pick the set, reserve every member, run them in parallel, refine (see the module docstring)."""
        task = caller.router.task
        text = task.text if text is None else text
        worst = {a.tier: caller.worst(a.tier) for a in self.agents}
        scores = self.scores(text, worst)
        picked: list[str] = []
        taken = []
        props: list[float] = []
        for i in range(min(self.k, len(self.agents))):
            left = [a.tier for a in self.agents if a.tier not in picked]
            options = [caller.option(t, rank=r, descriptor={"score": scores[t]}) for r, t in enumerate(left)]
            pending = caller.router.observe("model", f"{PICK}{i}", options)
            offered = [t for t in left if t in pending.options]
            if not offered:
                caller.refused.append(f"{PICK}{i}: " + "; ".join(m.reason for m in pending.observation.masked))
                break
            dist = plackett_luce([scores[t] for t in offered], self.temperature)
            j = int(self._rng.choice(len(offered), p=dist)) if self.temperature > 0 else int(np.argmax(dist))
            chosen = offered[j]
            choice = caller.router.take(pending, Decision(
                chosen, {t: float(p) for t, p in zip(offered, dist, strict=True)},
                scores={t: scores[t] for t in offered},
                reason=f"fanout: pick {i + 1}/{self.k} by descriptor score", explored=self.temperature > 0,
                evidence={"picked": list(picked), "pick": i}))
            if choice.stop is not None:
                caller.refused.append(f"{PICK}{i}:{chosen}: {choice.stop}")
                break
            picked.append(chosen)
            props.append(float(dist[j]))
            taken.append(choice)
        answers = [a for a in caller.gather(taken, messages_for(text)) if a is not None]
        evidence: dict[str, Any] = {"set": picked, "set_size": len(picked), "scores": scores,
                                    "propensity": math.prod(props) if props else 1.0}
        if not answers:
            return caller.outcome(None, evidence)
        win = self.merge(text, task.category, answers, scores)
        return caller.outcome(answers[win], {**evidence, "final": answers[win].tier})

    def merge(self, text: str, category: str | None, answers: Sequence[Answer], scores: Mapping[str, float]) -> int:
        """The refine node: which answer to keep (agreement weighted by score rank, or ``refine``)."""
        if self.refine is not None:
            i = int(self.refine(text, [a.text for a in answers]))
            if not 0 <= i < len(answers):
                raise ConfigError(f"FanOut.refine returned {i}, not an index of the {len(answers)} answers",
                                  name="refine")
            return i
        fam = family_of(text, category)
        ex = [extract(a.text, fam, text) for a in answers]
        order = sorted(range(len(answers)), key=lambda i: scores[answers[i].tier])
        ranks = [order.index(i) for i in range(len(answers))]
        return vote(ex, [1.0] * len(answers), ranks)


def descriptors_from_table(table: RoutingTable, *, examples: int = 40) -> list[Descriptor]:
    """A descriptor per option of a *training* table: its mean quality as prior, and examples of what it is good at.

    The examples are the tasks it answered right where most options failed.
    """
    q = table.quality
    hard = q.mean(axis=1)
    out = []
    for j, o in enumerate(table.options):
        mine = np.flatnonzero(q[:, j] >= 0.5)
        mine = mine[np.argsort(hard[mine], kind="stable")][:examples]
        out.append(Descriptor(o, description="", examples=[table.texts[i] for i in mine],
                              prior=float(q[:, j].mean())))
    return out


__all__ = ["PICK", "Descriptor", "FanOut", "descriptors_from_table", "plackett_luce", "set_propensity"]
