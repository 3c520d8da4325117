"""Fusion of a pheromone colony: the task types' levels (or the pooled estimate) and η into selection scores.

A mixin of :class:`~agentroute.policies.pheromone.PheromonePolicy`. For one task-type mixture at one routing point
(after one previous choice) it fuses the specialists' levels, adds the static η terms and caches the selection
probabilities on the candidate set until the table, λ or an observed latency moves. Two estimates: the raw levels
(``estimate="level"``) and the pooled estimate of :mod:`agentroute.policies._pheromone_prior` (``"pooled"``);
``"auto"`` picks per decision (:func:`~agentroute.policies._pheromone_prior.use_pooled`). Pure Python over a few
floats; it never writes the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import repeat
from typing import Any

from agentroute.policies._pheromone_eta import CandInfo
from agentroute.policies._pheromone_intent import IntentModel
from agentroute.policies._pheromone_math import MAX_FUSED, Fused, mix, softmax
from agentroute.policies._pheromone_prior import Priors, estimate, priors, use_pooled
from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable
from agentroute.policies._pheromone_worker import PheromoneUpdate


class ColonyFusion:
    """The fusion half of the colony (see the module docstring)."""

    table: PheromoneTable
    params: PheromoneParams
    intent: IntentModel
    alpha: float
    beta: float
    exploit: float
    eta: dict[str, float]
    estimate: str
    optimism: float
    eliminate: float | None
    pool: float
    prior_weight: float
    min_visits: float
    price_prior: bool
    transition_weight: float
    reprice: bool
    cost_span: float
    _signal: Callable[[PheromoneUpdate], float]
    _priors: dict[tuple[Any, ...], Priors]

    def _fuse(
        self, info: CandInfo, w: dict[str, float], point: str, prev: str,
        static: tuple[dict[str, list[float]], list[float] | None], lam: float = 0.0, scale: float = 1.0,
    ) -> Fused:
        """Fuse the specialists for one mixture at one point (after ``prev``) and cache P (without load).

        Pure Python over a few floats: ``map(dict.get, ...)`` runs the look-ups in C and each fused quantity
        is one pass over the candidates, which is faster than numpy at this size.
        """
        table = self.table
        version = table.version  # read before the levels: a write meanwhile leaves a stale version, not stale data
        ids = info.ids
        n = len(ids)
        if use_pooled(self.estimate, info.raw_costs, lam / scale):
            return self._fuse_pooled(info, w, point, prev, static, lam, scale, version)
        t0 = self.params.initial
        kappa = self.transition_weight if prev else 0.0
        levels, bonus = table.levels, table.bonus
        wu = self.eta["uncertainty"] if self.beta > 0 else 0.0
        ws: list[float] = []
        vs: list[list[float]] = []
        bs: list[list[float]] = []
        for t, wt in w.items():
            node = levels(t, point, "")
            vals = [t0] * n if node is None else list(map(node.get, ids, repeat(t0, n)))
            if kappa:  # (1 − κ)·τ(point, option) + κ·τ(prev → point, option)
                trans = levels(t, point, prev)
                tv = repeat(t0, n) if trans is None else map(trans.get, ids, repeat(t0, n))
                vals = [(1.0 - kappa) * a + kappa * x for a, x in zip(vals, tv, strict=False)]
            ws.append(wt)
            vs.append(vals)
            if wu > 0:  # fused like τ: Σ_t w_t / √(1 + visits_t)
                bn = bonus(t, point, "")
                bs.append([1.0] * n if bn is None else list(map(bn.get, ids, repeat(1.0, n))))
        tau = mix(ws, vs, n, t0)
        if self.reprice:
            tau = self._repriced(tau, info, lam, scale)
        unc = mix(ws, bs, n, 0.0) if wu > 0 else None
        alpha, beta, log = self.alpha, self.beta, math.log
        # score = α·log τ + β·Σ_k w_k·log η_k; log η_uncertainty = w·bonus (the shift by the best cancels in P)
        log_static = static[1]
        if unc is not None:
            bu = beta * wu
            if log_static is not None:
                score = [alpha * log(x) + bu * u + beta * e for x, u, e in zip(tau, unc, log_static, strict=True)]
            else:
                score = [alpha * log(x) + bu * u for x, u in zip(tau, unc, strict=True)]
        elif log_static is not None:
            score = [alpha * log(x) + beta * e for x, e in zip(tau, log_static, strict=True)]
        else:
            score = [alpha * log(x) for x in tau]
        return self._cache_fused(info, w, point, prev, static, version, tau, unc, score)

    def _fuse_pooled(
        self, info: CandInfo, w: dict[str, float], point: str, prev: str,
        static: tuple[dict[str, list[float]], list[float] | None], lam: float, scale: float, version: int,
    ) -> Fused:
        """The many-option fusion (:mod:`agentroute.policies._pheromone_prior`).

        τ is the optimistic pooled level ``u_j`` (prior, ceiling, pooling and the optimism width replace the
        ``ability``, ``price`` and ``uncertainty`` η terms, which would count them twice); ``latency`` stays; a
        dominated option's score is −∞ (probability 0).
        """
        hit = info.priors
        if hit is None or hit[0] != (lam, scale):
            # an equal candidate set (a driver that builds new tuples per decision) shares its priors
            key = (tuple(info.ids), tuple(info.raw_costs), tuple(info.ability or ()), lam, scale)
            pri = self._priors.get(key)
            if pri is None:
                if len(self._priors) >= MAX_FUSED:
                    self._priors.clear()
                pri = self._priors[key] = priors(info.ids, info.raw_costs, info.descriptors, self._signal,
                                                 self.params, lam, scale, self.prior_weight)
            info.priors = hit = ((lam, scale), pri)
        est = estimate(self.table, self.intent.task_types, w, point, prev,
                       self.transition_weight if prev else 0.0, info.ids, hit[1], optimism=self.optimism,
                       pool=self.pool, eliminate=self.eliminate, min_visits=self.min_visits,
                       curve=self.price_prior, quality=self.reprice)
        alpha, log = self.alpha, math.log
        lat = static[0].get("latency") if self.beta > 0 else None
        bl = self.beta * self.eta["latency"]
        score = [-math.inf if out else alpha * log(x) + (bl * log(lat[j]) if lat is not None else 0.0)
                 for j, (x, out) in enumerate(zip(est.level, est.eliminated, strict=True))]
        return self._cache_fused(info, w, point, prev, static, version, est.level, None, score)

    def _repriced(self, tau: list[float], info: CandInfo, lam: float, scale: float) -> list[float]:
        """Levels learnt as quality (``reprice=True``: deposits at λ = 0) as the utility signal at this λ.

        The ``utility`` signal is affine in quality at a given price, so a level that averages quality becomes the
        level at λ with the candidate's price: ``(q − λ·c + λ·S)/(1 + λ·S)`` in cost units, clipped as deposits
        are. A candidate without a price is priced as the cheapest (as the ``price`` η term does).
        """
        if lam <= 0:
            return tau
        p = self.params
        ls = lam * self.cost_span
        costs = info.costs or [0.0] * len(tau)
        return [min(p.tau_max, max(p.tau_min, p.q * (x / p.q - lam * c / scale + ls) / (1.0 + ls)))
                for x, c in zip(tau, costs, strict=True)]

    def _cache_fused(
        self, info: CandInfo, w: dict[str, float], point: str, prev: str,
        static: tuple[dict[str, list[float]], list[float] | None], version: int, tau: list[float],
        unc: list[float] | None, score: list[float],
    ) -> Fused:
        ids = info.ids
        p, best = softmax(score)
        q1 = 1.0 - self.exploit
        probs = {cid: q1 * x for cid, x in zip(ids, p, strict=True)}
        probs[ids[best]] += self.exploit
        ent = Fused(version, static, w, tau, unc, score, p, best, probs, dict(zip(ids, p, strict=True)))
        cache = info.fused
        if len(cache) >= MAX_FUSED:
            cache.clear()
        cache[(id(w), point, prev)] = ent  # the entry holds w, so its id cannot be reused while it is cached
        return ent


__all__ = ["ColonyFusion"]
