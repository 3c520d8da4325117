"""The arithmetic of a pheromone decision, with no state of its own.

Fused levels (cached per candidate set), the lazily built evidence, softmax and draws, and the deposit signals.
Pure Python over a few floats (faster than numpy at this size).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any

from agentroute.policies._pheromone_worker import PheromoneUpdate

SIGNALS = ("utility", "ratio")


@dataclass(slots=True)
class Step:
    """One decision of a task's path, waiting for its credit."""

    point: str
    prev: str
    option: str
    weights: dict[str, float]
    cost_weight: float
    cost_scale: float
    cost: float | None = None
    credited: bool = False
    fed: bool = False


@dataclass(slots=True)
class Path:
    """The decisions of one task not yet credited, and its cost so far."""

    steps: list[Step]
    cost: float = 0.0


@dataclass(slots=True)
class Fused:
    """A cached fusion: valid while the table's version, the static η and the mixture object are the same."""

    version: int
    static: tuple[dict[str, list[float]], list[float] | None]
    w: dict[str, float]
    tau: list[float]
    unc: list[float] | None
    score: list[float]
    p: list[float]
    best: int
    probs: dict[str, float]
    scores: dict[str, float]


class Evidence(Mapping[str, Any]):
    """``Decision.evidence`` of a pheromone decision, built when read (most decisions are never traced).

    Keys: ``tau``, ``eta`` (each term per candidate), ``weights``, ``intent_source``, ``prev``, ``selection``.
    ``dict(evidence)`` or :meth:`as_dict` gives plain, JSON-ready values.
    """

    __slots__ = ("_how", "_ids", "_load", "_prev", "_source", "_tau", "_terms", "_unc", "_w")
    KEYS = ("tau", "eta", "weights", "intent_source", "prev", "selection")

    def __init__(self, ids: list[str], tau: list[float], terms: dict[str, list[float]], unc: list[float] | None,
                 load: list[float] | None, w: dict[str, float], source: str, prev: str, how: str) -> None:
        self._ids, self._tau, self._terms, self._unc, self._load = ids, tau, terms, unc, load
        self._w, self._source, self._prev, self._how = w, source, prev, how

    def __getitem__(self, key: str) -> Any:
        ids = self._ids
        if key == "tau":
            return dict(zip(ids, self._tau, strict=True))
        if key == "eta":
            out = {k: dict(zip(ids, v, strict=True)) for k, v in self._terms.items()}
            if self._load is not None:
                out["load"] = dict(zip(ids, self._load, strict=True))
            if self._unc is not None:
                out["uncertainty"] = dict(zip(ids, self._unc, strict=True))
            return out
        if key == "weights":
            return dict(self._w)
        if key == "intent_source":
            return self._source
        if key == "prev":
            return self._prev
        if key == "selection":
            return self._how
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (what the tracing layer records)."""
        return {k: self[k] for k in self.KEYS}

    def __repr__(self) -> str:
        return f"PheromoneEvidence({self.as_dict()!r})"


NO_ETA: tuple[dict[str, list[float]], list[float] | None] = ({}, None)
MAX_FUSED = 4096


def mix(ws: list[float], vs: list[list[float]], n: int, empty: float) -> list[float]:
    """``Σ_t ws[t]·vs[t]`` element-wise, in one pass for up to three task types."""
    k = len(ws)
    if k == 1:
        w0 = ws[0]
        return vs[0] if w0 == 1.0 else [w0 * a for a in vs[0]]
    if k == 2:
        w0, w1 = ws
        return [w0 * a + w1 * b for a, b in zip(vs[0], vs[1], strict=True)]
    if k == 3:
        w0, w1, w2 = ws
        return [w0 * a + w1 * b + w2 * c for a, b, c in zip(vs[0], vs[1], vs[2], strict=True)]
    if k == 0:
        return [empty] * n
    return [sum(map(mul, ws, col)) for col in zip(*vs, strict=True)]


def softmax(score: list[float]) -> tuple[list[float], int]:
    """``(P, argmax)`` of ``P ∝ exp(score)``."""
    top = max(score)
    exp = math.exp
    e = [exp(x - top) for x in score]
    z = sum(e)
    return [x / z for x in e], score.index(top)


def draw(p: Sequence[float], u: float) -> int:
    acc = 0.0
    for i, x in enumerate(p):
        acc += x
        if u < acc:
            return i
    return len(p) - 1


def utility(u: PheromoneUpdate, span: float = 0.0) -> float:
    """``(quality − λ·cost/scale + λ·span) / (1 + λ·span)``: the reward mapped affinely onto [0, 1]."""
    q = 0.0 if u.quality is None else u.quality
    c = 0.0 if u.cost_usd is None else u.cost_usd
    lam_span = u.cost_weight * span
    return (q - u.cost_weight * c / u.cost_scale + lam_span) / (1.0 + lam_span)


def ratio(u: PheromoneUpdate, eps: float) -> float:
    q = 0.0 if u.quality is None else u.quality
    c = 0.0 if u.cost_usd is None else u.cost_usd
    return q * eps / (eps + c / u.cost_scale)


__all__ = [
    "MAX_FUSED",
    "NO_ETA",
    "SIGNALS",
    "Evidence",
    "Fused",
    "Path",
    "Step",
    "draw",
    "mix",
    "ratio",
    "softmax",
    "utility",
]
