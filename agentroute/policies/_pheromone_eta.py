"""The heuristic η of the pheromone policy: per-candidate desirability terms, each normalised to (0, 1].

``ability`` (a prior quality from the candidate's descriptor), ``price`` (``exp(−λ·Δcost/scale)``, the known price
part of the reward), ``latency`` (observed, else estimated) and ``load`` (decisions waiting for feedback); the
policy adds ``uncertainty`` from the table's visit counts. What depends only on the candidate set is computed once
per set (:class:`CandInfo`), and the price and latency terms are cached until λ or a latency changes: this runs on
every decision. Pure Python, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

ETA_TERMS = ("ability", "price", "latency", "load", "uncertainty")
DEFAULT_ETA = {"ability": 1.0, "price": 1.0, "latency": 0.25, "load": 0.25, "uncertainty": 2.0}
"""Default η weights (exponents of each normalised term; 0 switches a term off)."""
ABILITY_KEYS = ("ability", "quality", "prior")
LATENCY_FLOOR = 0.05
"""Seconds: latencies below this do not count as faster."""


class CandInfo:
    """Per candidate set: ids, normalised prior ability (and its log), price estimates, latency estimates."""

    __slots__ = ("ability", "cost_min", "costs", "ids", "latency", "latency_eta", "latency_key", "log_ability",
                 "price", "price_key")

    def __init__(self, cands: tuple[Any, ...]) -> None:
        self.ids: list[str] = [c.id for c in cands]
        ab = [ability_of(c.descriptor) for c in cands]
        known = [a for a in ab if a is not None]
        self.ability: list[float] | None = None
        self.log_ability: list[float] | None = None
        if known and max(known) > 0:
            top = max(known)
            self.ability = [1.0 if a is None else max(a / top, 0.05) for a in ab]
            self.log_ability = [math.log(a) for a in self.ability]
        raw = [None if c.cost_estimate is None else float(c.cost_estimate) for c in cands]
        known_c = [c for c in raw if c is not None]
        self.costs: list[float] | None = None
        self.cost_min = 0.0
        if known_c:
            self.cost_min = min(known_c)
            self.costs = [self.cost_min if c is None else c for c in raw]  # unknown price: no penalty
        self.price_key: tuple[float, float, float] | None = None
        self.latency_key = -1
        self.latency_eta: tuple[list[float], list[float]] | None = None
        self.price: tuple[list[float], list[float]] = ([], [])
        self.latency: list[float | None] = [
            None if c.latency_estimate is None else max(float(c.latency_estimate), 0.0) for c in cands
        ]


def eta_terms(
    info: CandInfo,
    eta: Mapping[str, float],
    lam: float,
    scale: float,
    latency: Mapping[str, float],
    lat_version: int,
    inflight: Mapping[str, int],
) -> tuple[dict[str, list[float]], list[float] | None]:
    """The η terms (each normalised to (0, 1], best = 1) and ``Σ_k w_k·log η_k`` per candidate.

    ``latency`` holds observed latencies (seconds) and ``lat_version`` changes whenever one moved; ``inflight``
    counts the decisions per option still waiting for their feedback. ``uncertainty`` is added by the policy.
    """
    terms: dict[str, list[float]] = {}
    log_eta: list[float] | None = None
    if info.ability is not None and eta["ability"] > 0:
        terms["ability"] = info.ability
        wk = eta["ability"]
        log_eta = [wk * x for x in info.log_ability]  # type: ignore[union-attr]
    if info.costs is not None and lam > 0 and eta["price"] > 0:
        key = (lam, scale, eta["price"])
        if info.price_key != key:  # the same candidate set at the same λ: computed once
            neg = [-(lam / scale) * (c - info.cost_min) for c in info.costs]  # log exp(−λ·Δc/scale)
            info.price_key = key
            info.price = ([math.exp(x) for x in neg], [eta["price"] * x for x in neg])
        vals, logs = info.price
        terms["price"] = vals
        log_eta = logs if log_eta is None else [a + b for a, b in zip(log_eta, logs, strict=True)]
    if eta["latency"] > 0:
        if info.latency_key != lat_version:  # recomputed only when an option's latency moved
            seen = latency
            lat = [seen.get(cid, est) for cid, est in zip(info.ids, info.latency, strict=True)] if seen \
                else info.latency
            known = [x for x in lat if x is not None]
            info.latency_key = lat_version
            if known:
                lo_l = min(known) + LATENCY_FLOOR  # latencies are >= 0 (checked where they are recorded)
                vals = [1.0 if x is None else lo_l / (x + LATENCY_FLOOR) for x in lat]
                info.latency_eta = (vals, [eta["latency"] * math.log(v) for v in vals])
            else:
                info.latency_eta = None
        if info.latency_eta is not None:
            vals, logs = info.latency_eta
            terms["latency"] = vals
            log_eta = logs if log_eta is None else [a + b for a, b in zip(log_eta, logs, strict=True)]
    if inflight and eta["load"] > 0:
        inflight = inflight
        load = [inflight.get(cid, 0) for cid in info.ids]
        if any(load):
            lo_n = 1 + min(load)
            vals = [lo_n / (1 + m) for m in load]
            terms["load"] = vals
            wk, log = eta["load"], math.log
            log_eta = [wk * log(v) for v in vals] if log_eta is None else \
                [a + wk * log(v) for a, v in zip(log_eta, vals, strict=True)]
    return terms, log_eta


def ability_of(d: Mapping[str, Any]) -> float | None:
    for k in ABILITY_KEYS:
        v = d.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


__all__ = ["ABILITY_KEYS", "DEFAULT_ETA", "ETA_TERMS", "LATENCY_FLOOR", "CandInfo", "ability_of", "eta_terms"]
