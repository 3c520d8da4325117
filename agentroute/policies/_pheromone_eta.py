"""The heuristic η of the pheromone policy: per-candidate desirability terms, each normalised to (0, 1].

``ability`` (a prior quality from the candidate's descriptor), ``price`` (``exp(−λ·Δcost/scale)``, the known price
part of the reward), ``latency`` (observed, else estimated) and ``load`` (decisions waiting for feedback); the
policy adds ``uncertainty`` from the table's visit counts. What depends only on the candidate set is computed once
per set (:class:`CandInfo`), and the ability, price and latency terms are cached until λ or a latency changes: this
runs on every decision. Pure Python (lists of a few floats are faster than numpy arrays here), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

ETA_TERMS = ("ability", "price", "latency", "load", "uncertainty")
DEFAULT_ETA = {"ability": 1.0, "price": 1.0, "latency": 0.25, "load": 0.25, "uncertainty": 2.0}
"""Default η weights (exponents of each normalised term; 0 switches a term off)."""
ABILITY_KEYS = ("ability", "quality", "prior")
LATENCY_FLOOR = 0.05
"""Seconds: latencies below this do not count as faster."""


class CandInfo:
    """Per candidate set: ids, normalised prior ability (and its log), price estimates, latency estimates.

    It also holds the caches of the decision path: the static η (:func:`static_eta`) and, per task-type mixture,
    point and previous choice, the fused pheromone and selection probabilities (filled by the policy).
    """

    __slots__ = ("ability", "cost_min", "costs", "descriptors", "fused", "ids", "latency", "log_ability", "priors",
                 "raw_costs", "static", "static_key")

    def __init__(self, cands: tuple[Any, ...], extra: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.ids: list[str] = [c.id for c in cands]
        # descriptors given to the policy by option id, under the candidate's own (which win)
        self.descriptors: list[Mapping[str, Any]] = [
            {**dict((extra or {}).get(c.id) or {}), **dict(c.descriptor or {})} for c in cands]
        ab = [ability_of(d) for d in self.descriptors]
        known = [a for a in ab if a is not None]
        self.ability: list[float] | None = None
        self.log_ability: list[float] | None = None
        if known and max(known) > 0:
            top = max(known)
            self.ability = [1.0 if a is None else max(a / top, 0.05) for a in ab]
            self.log_ability = [math.log(a) for a in self.ability]
        raw = [None if c.cost_estimate is None else float(c.cost_estimate) for c in cands]
        self.raw_costs: list[float | None] = raw
        known_c = [c for c in raw if c is not None]
        self.costs: list[float] | None = None
        self.cost_min = 0.0
        if known_c:
            self.cost_min = min(known_c)
            self.costs = [self.cost_min if c is None else c for c in raw]  # unknown price: no penalty
        self.latency: list[float | None] = [
            None if c.latency_estimate is None else max(float(c.latency_estimate), 0.0) for c in cands
        ]
        self.static_key: tuple[float, float, int] | None = None
        self.static: tuple[dict[str, list[float]], list[float] | None] = ({}, None)
        self.fused: dict[Any, Any] = {}
        self.priors: tuple[tuple[float, float], Any] | None = None
        """The pooled estimate's priors and the ``(λ, scale)`` they were computed at."""


def static_eta(
    info: CandInfo,
    eta: Mapping[str, float],
    lam: float,
    scale: float,
    latency: Mapping[str, float],
    lat_version: int,
) -> tuple[dict[str, list[float]], list[float] | None]:
    """The η terms that change only with λ, the cost unit or an observed latency, and ``Σ_k w_k·log η_k``.

    ``ability``, ``price`` and ``latency``, each normalised to (0, 1] (best = 1); ``None`` for the log sum when no
    term applies. Cached on ``info`` until ``(λ, scale, lat_version)`` changes: ``latency`` holds the observed
    latencies (seconds) and ``lat_version`` changes whenever one moved. The terms' lists are shared by every
    decision that reads them: do not mutate them.
    """
    key = (lam, scale, lat_version)
    if info.static_key == key:
        return info.static
    terms: dict[str, list[float]] = {}
    log_eta: list[float] | None = None
    if info.ability is not None and info.log_ability is not None and eta["ability"] > 0:
        terms["ability"] = info.ability
        log_eta = _add_weighted(log_eta, eta["ability"], info.log_ability)
    if info.costs is not None and lam > 0 and eta["price"] > 0:
        neg = [-(lam / scale) * (c - info.cost_min) for c in info.costs]  # log exp(−λ·Δc/scale)
        terms["price"] = [math.exp(x) for x in neg]
        log_eta = _add_weighted(log_eta, eta["price"], neg)
    if eta["latency"] > 0:
        lat = [latency.get(cid, est) for cid, est in zip(info.ids, info.latency, strict=True)] if latency \
            else info.latency
        known = [x for x in lat if x is not None]
        if known:
            lo_l = min(known) + LATENCY_FLOOR  # latencies are >= 0 (checked where they are recorded)
            vals = [1.0 if x is None else lo_l / (x + LATENCY_FLOOR) for x in lat]
            terms["latency"] = vals
            log_eta = _add_weighted(log_eta, eta["latency"], [math.log(v) for v in vals])
    info.static_key = key
    info.static = (terms, log_eta)
    return info.static


def _add_weighted(acc: list[float] | None, w: float, logs: Sequence[float]) -> list[float]:
    """``acc + w * logs`` element-wise (``w * logs`` when nothing is accumulated yet)."""
    if acc is None:
        return [w * x for x in logs]
    return [a + w * x for a, x in zip(acc, logs, strict=True)]


def load_eta(info: CandInfo, inflight: Mapping[str, int]) -> list[float] | None:
    """The ``load`` term, ``(1 + min waiting) / (1 + waiting)`` per candidate; ``None`` when nothing waits."""
    get = inflight.get
    load = [get(cid, 0) for cid in info.ids]
    if not any(load):
        return None
    lo_n = 1 + min(load)
    return [lo_n / (1 + m) for m in load]


def eta_terms(
    info: CandInfo,
    eta: Mapping[str, float],
    lam: float,
    scale: float,
    latency: Mapping[str, float],
    lat_version: int,
    inflight: Mapping[str, int],
) -> tuple[dict[str, list[float]], list[float] | None]:
    """Every η term but ``uncertainty`` (the policy adds it) and ``Σ_k w_k·log η_k`` per candidate."""
    terms, log_eta = static_eta(info, eta, lam, scale, latency, lat_version)
    terms = dict(terms)
    if inflight and eta["load"] > 0:
        vals = load_eta(info, inflight)
        if vals is not None:
            terms["load"] = vals
            log_eta = _add_weighted(log_eta, eta["load"], [math.log(v) for v in vals])
    return terms, log_eta


def ability_of(d: Mapping[str, Any]) -> float | None:
    for k in ABILITY_KEYS:
        v = d.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


__all__ = ["ABILITY_KEYS", "DEFAULT_ETA", "ETA_TERMS", "LATENCY_FLOOR", "CandInfo", "ability_of", "eta_terms",
           "load_eta", "static_eta"]
