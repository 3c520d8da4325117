"""A category-aware semantic cache, offered at a model routing point like a tier: a hit costs nothing.

:class:`SemanticCache` keeps answers with the embedding of the question they answered (agentroute's offline
featurizer, :class:`~agentroute.features.HashingFeaturizer`, or any fitted featurizer: the embeddings extra works the
same) and its category. A lookup returns the most similar stored answer **of the same category**, if its cosine
similarity reaches that category's ``threshold`` and its age is within that category's ``ttl`` (seconds on the
cache's clock; a stream passes its own time). Only the question itself is embedded (a few-shot prompt's last
question), so shared few-shot examples do not make different questions look alike.

:class:`Cached` puts the cache in front of any strategy (or single model) at the routing point ``cache``: the
candidates are ``cache`` (needs and costs USD 0; its descriptor carries the similarity, the age and the category)
and ``model`` (the strategy behind it). A policy chooses between them like between tiers; the default
:class:`CacheRule` takes the cache when the entry passes its category's threshold and TTL. A miss runs the inner
strategy and stores its answer.

**Wrong hits are measurable**: each stored answer keeps the id of the task it answered (``source``); a hit on a task
whose source differs is a wrong hit, counted in the outcome's evidence (``wrong_hit``) and scored 0 in evaluations.
:func:`repeat_stream` builds a stream from a table in which a share of the queries repeat, exactly or paraphrased.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.budget import Spend
from agentroute.errors import ConfigError
from agentroute.routing import Candidate, Decision, Observation, Option
from agentroute.strategies._answers import question_of
from agentroute.strategies._driver import Caller, Outcome

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable
    from agentroute.features import Featurizer

POINT = "cache"


def _per_category(value: float | Mapping[str, float], category: str | None, default: float) -> float:
    if isinstance(value, Mapping):
        got = value.get(category or "", value.get("*", default))
        return float(got)
    return float(value)


@dataclass
class Entry:
    """One stored answer."""

    vector: np.ndarray
    category: str | None
    text: str
    tier: str | None
    quality: float | None
    source: str
    stored_at: float


@dataclass
class SemanticCache:
    """Answers by question similarity, per category (see the module docstring)."""

    threshold: float | Mapping[str, float] = 0.9
    """Least cosine similarity of a hit, per category (a mapping; ``"*"`` for the rest) or for all."""
    ttl: float | Mapping[str, float] = math.inf
    """Most seconds an entry serves, per category or for all."""
    featurizer: Featurizer | None = None
    clock: Callable[[], float] = time.monotonic
    entries: list[Entry] = field(default_factory=list)

    def fit(self, texts: Sequence[str]) -> SemanticCache:
        """Fit the featurizer on question texts (a :class:`~agentroute.features.HashingFeaturizer` by default)."""
        from agentroute.features import HashingFeaturizer

        if self.featurizer is None:
            self.featurizer = HashingFeaturizer(n_features=4096, use_category=False)
        self.featurizer.fit([question_of(t) for t in texts])
        return self

    def _vec(self, text: str) -> np.ndarray:
        if self.featurizer is None:
            raise ConfigError("SemanticCache: fit(texts) first (or pass a fitted featurizer)", name="featurizer")
        v: np.ndarray = np.asarray(self.featurizer.transform([question_of(text)])[0], dtype=np.float64)
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v

    def calibrate(self, texts: Sequence[str], categories: Sequence[str | None], *, wrong_share: float = 0.0,
                  margin: float = 1e-3, sample: int = 400, seed: int = 0) -> dict[str, float]:
        """Set each category's threshold above the similarity of distinct questions of that category.

        For up to ``sample`` training questions per category, the similarity to the nearest *other* question of
        the category is measured; the threshold is its ``1 − wrong_share`` quantile plus ``margin`` (so at most
        ``wrong_share`` of distinct questions would be served another's answer). Returns the thresholds.
        """
        rng = np.random.default_rng(seed)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(categories):
            groups.setdefault(c or "", []).append(i)
        out: dict[str, float] = {}
        for cat, idx in groups.items():
            pick = rng.permutation(idx)[:sample]
            if len(pick) < 2:
                continue
            v = np.stack([self._vec(texts[i]) for i in pick])
            sims = v @ v.T
            np.fill_diagonal(sims, -1.0)
            out[cat] = min(1.0, float(np.quantile(sims.max(axis=1), 1.0 - wrong_share)) + margin)
        base = self.threshold if isinstance(self.threshold, float | int) else 0.9
        self.threshold = {**out, "*": float(base)}
        return out

    def lookup(self, text: str, category: str | None, now: float | None = None) -> tuple[Entry, float] | None:
        """The most similar live entry of ``category`` and its similarity (thresholds are the policy's business)."""
        t = self.clock() if now is None else now
        ttl = _per_category(self.ttl, category, math.inf)
        live = [e for e in self.entries if e.category == category and t - e.stored_at <= ttl]
        if not live:
            return None
        q = self._vec(text)
        sims = np.asarray([float(e.vector @ q) for e in live])
        k = int(np.argmax(sims))
        return live[k], float(sims[k])

    def store(self, text: str, category: str | None, answer: str, *, tier: str | None = None,
              quality: float | None = None, source: str = "", now: float | None = None) -> None:
        """Keep ``answer`` to the question ``text``."""
        self.entries.append(Entry(self._vec(text), category, answer, tier, quality, source,
                                  self.clock() if now is None else now))


@dataclass(frozen=True)
class CacheRule:
    """The default cache policy: take ``cache`` when it passes its category's threshold and TTL, else ``model``."""

    cache: SemanticCache
    name: str = "cache-rule"
    version: str = "1"

    def decide(self, obs: Observation) -> Decision:
        """Choose between ``cache`` and ``model`` (see the class docstring)."""
        c = obs.candidate("cache")
        if c is not None:
            sim, cat = float(c.descriptor["similarity"]), c.descriptor.get("category")
            need = _per_category(self.cache.threshold, cat, 0.9)
            if sim >= need:
                return Decision("cache", {i: float(i == "cache") for i in obs.ids},
                                reason=f"cache: similarity {sim:.3f} >= {need:.3f} for {cat!r}")
        return Decision("model", {i: float(i == "model") for i in obs.ids}, reason="cache: miss")


@dataclass
class Cached:
    """``inner`` (any strategy or single model) behind a :class:`SemanticCache` (see the module docstring)."""

    inner: Any
    cache: SemanticCache
    policy: Any = None
    """Decides at the ``cache`` point (default :class:`CacheRule`)."""
    name: str = "cache"
    stream: Mapping[str, Any] | None = None
    """Evaluations run it on ``repeat_stream(table, **stream)`` (``None``: on the table's rows as they are)."""

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = CacheRule(self.cache)

    @property
    def tiers(self) -> tuple[str, ...]:
        """The tiers of the strategy behind the cache."""
        return tuple(getattr(self.inner, "tiers", ()))

    def run(self, caller: Caller, query: str | None = None, *, source: str | None = None,
            now: float | None = None) -> Outcome:
        """Serve ``query`` (default the task's text) from the cache or from ``inner`` (which answers the task)."""
        task = caller.router.task
        text = task.text if query is None else query
        src = task.id if source is None else source
        hit = self.cache.lookup(text, task.category, now)
        t = self.cache.clock() if now is None else now
        options = [Option(Candidate("model", "model", rank=1, descriptor={"strategy": getattr(self.inner, "name", "")}),
                          Spend(usd=None), Spend())]
        if hit is not None:
            entry, sim = hit
            options.insert(0, Option(Candidate("cache", "model", rank=0, cost_estimate=Decimal(0), descriptor={
                "similarity": sim, "age": t - entry.stored_at, "category": task.category}), Spend(usd=Decimal(0))))
        pending = caller.router.observe("model", POINT, options)
        decision = self.policy.decide(pending.observation)
        choice = caller.router.take(pending, decision)
        if decision.chosen == "cache" and hit is not None:
            entry, sim = hit
            choice.commit(Spend(usd=Decimal(0)))
            wrong = entry.source != src
            choice.close(quality=0.0 if wrong else entry.quality, feedback=False)
            return Outcome(entry.text, "cache", 0.0 if wrong else entry.quality, Decimal(0), 0, evidence={
                "cache_hit": True, "wrong_hit": wrong, "similarity": sim, "source": entry.source})
        choice.close(feedback=False)
        o: Outcome = self.inner.run(caller)
        if o.text is not None:
            self.cache.store(text, task.category, o.text, tier=o.tier, quality=o.quality, source=src, now=t)
        return Outcome(o.text, o.tier, o.quality, o.cost_usd, o.calls, o.truncated, o.refused,
                       {**o.evidence, "cache_hit": False, "wrong_hit": False})


@dataclass(frozen=True)
class StreamItem:
    """One query of a stream: the table row it asks, its text as sent, how it arose, and when."""

    row: int
    text: str
    kind: str
    """``new``, ``exact`` (a repeat word for word) or ``paraphrase``."""
    at: float


_SWAPS = (("Which", "What"), ("which", "what"), ("the following", "these"), ("Print only a single choice",
          "Reply with one choice only"), ("without explanation", "and explain nothing"), ("Write a", "Please write a"),
          ("function", "Python function"), ("is", "is really"))


def paraphrase(text: str) -> str:
    """A light, deterministic rewording of a question (a few word swaps, a polite prefix) for repeat streams."""
    q = question_of(text)
    head = text[: len(text) - len(q)]
    out = q
    for a, b in _SWAPS:
        out, n = re.subn(rf"\b{re.escape(a)}\b", b, out, count=1)
        if n and out != q:
            break
    if out == q:
        out = "Please answer: " + q
    return head + out


def repeat_stream(table: RoutingTable, *, repeat_share: float = 0.2, paraphrase_share: float = 0.5,
                  seed: int = 0, gap: float = 1.0) -> list[StreamItem]:
    """A stream over ``table``'s queries in which ``repeat_share`` of the items repeat an earlier query.

    Each query appears once as ``new``; repeats (``exact`` or, with probability ``paraphrase_share``, a
    ``paraphrase``) are inserted after their original, at random later places. Items are ``gap`` seconds apart.
    """
    if not 0.0 <= repeat_share < 1.0:
        raise ConfigError(f"repeat_share must be in [0, 1), got {repeat_share}", name="repeat_share")
    rng = np.random.default_rng(seed)
    n = len(table)
    n_rep = round(n * repeat_share / (1.0 - repeat_share))
    order: list[tuple[int, str]] = [(i, "new") for i in rng.permutation(n)]
    for _ in range(n_rep):
        pos = int(rng.integers(1, len(order) + 1))
        row = order[int(rng.integers(0, pos))][0]
        order.insert(pos, (row, "paraphrase" if rng.random() < paraphrase_share else "exact"))
    out = []
    for k, (row, kind) in enumerate(order):
        text = table.texts[row] if kind != "paraphrase" else paraphrase(table.texts[row])
        out.append(StreamItem(int(row), text, kind, k * gap))
    return out


__all__ = ["POINT", "CacheRule", "Cached", "Entry", "SemanticCache", "StreamItem", "paraphrase", "repeat_stream"]
