"""The pooled estimate of the pheromone policy, for many options and few queries.

The raw levels of a young colony say little when a point offers 20+ options: every edge starts at τ0 (optimistic
whatever its price), each task type learns alone, and a 0/1 outcome moves a level a long way. The pooled estimate
reads the same table and gives the colony, per option ``j`` of a decision:

- a **prior** ``π_j``: the deposit signal the option would earn at its known price with its descriptor's
  ``ability`` (:data:`~agentroute.policies._pheromone_eta.ABILITY_KEYS`), worth ``prior_weight`` visits; without an
  ability it is optimistic (quality 1 at its price) and worth ``prior_visits`` visits, as τ0 is. So an expensive
  option starts where λ·price puts it, not at τ_max;
- a **ceiling** ``c_j``: the signal at quality 1 and its price; no option's mean can be above it (cost-aware
  optimism never dreams an expensive option into the best one);
- per task type ``t``: the edge's mean deposit ``m_tj``, recovered from its level and visits (the table averages
  the first visits with τ0 as ``prior_visits`` pseudo-visits), shrunk towards what the *other* task types saw of
  the option (worth up to ``pool`` visits) and the prior, so a rare task type borrows from the frequent ones;
- the query's mixture ``w(q)`` fuses them: mean ``μ_j``, effective visits ``n_j``; the level the colony reads is
  the optimistic ``u_j = min(c_j, μ_j + optimism·s_j/√n_j)`` (``s_j`` the spread of a 0/1 outcome's signal);
- **elimination**: option ``j`` is dominated with confidence when its upper bound at ``z = eliminate`` (from
  evidence only, no descriptor prior) is below the best lower bound of an option with at least ``min_visits``
  visits; a dominated option gets probability 0. It is a function of the table, which moves for an option only
  when it is chosen, when change detection reopens the point or when the decay schedule runs: so a dominated
  option is never re-explored unless a drift is detected (or the best option's bound falls).

Pure Python over a few floats per option and task type; no I/O, no state of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentroute.policies._pheromone_eta import ability_of
from agentroute.policies._pheromone_store import PheromoneParams, PheromoneTable
from agentroute.policies._pheromone_worker import PheromoneUpdate

ESTIMATES = ("auto", "pooled", "level")
MANY_OPTIONS = 12
"""``estimate="auto"`` uses the pooled estimate at a point offering at least this many candidates."""
PRICE_GAP = 0.75
"""``estimate="auto"`` also uses it when the dearest candidate's price premium over the cheapest, ``λ·Δprice``, is
worth at least this share of a perfect answer (heavy-tailed prices: a price-blind optimistic start would pay it)."""


def use_pooled(mode: str, costs: Sequence[float | None], lam_usd: float) -> bool:
    """Whether a decision reads the pooled estimate (``mode`` is ``"auto"``, ``"pooled"`` or ``"level"``).

    ``"auto"``: with :data:`MANY_OPTIONS` candidates or more, or a price gap worth :data:`PRICE_GAP` of a perfect
    answer at λ (``lam_usd`` per USD; ``costs`` in USD, ``None`` unknown).

    Measured (docs/pheromone.md): with 9 and 11 options, prices spanning 100× at λ·Δprice = 0.89 the pooled
    estimate earns 0.97–0.99 of the best single option against 0.76–0.91 for the levels; on the long replays of
    the shared tables (λ·Δprice ≤ 0.5) the levels recover from a drift faster.
    """
    if mode != "auto":
        return mode == "pooled"
    if len(costs) >= MANY_OPTIONS:
        return True
    known = [c for c in costs if c is not None]
    return bool(known) and lam_usd * (max(known) - min(known)) >= PRICE_GAP


@dataclass(frozen=True, slots=True)
class Priors:
    """Per candidate (in the candidate set's order): prior signal, its weight, ceiling and outcome spread.

    ``bottom`` is the signal at quality 0 (``ceiling`` at quality 1: the signal is affine in quality between them);
    ``log_price`` is ``None`` where the price is unknown; ``fixed`` says the prior came from a descriptor (the
    others may be replaced by the price curve fitted on what the colony saw).
    """

    prior: list[float]
    weight: list[float]
    ceiling: list[float]
    spread: list[float]
    bottom: list[float]
    log_price: list[float | None]
    fixed: list[bool]


@dataclass(slots=True)
class Estimate:
    """The pooled estimate of one decision: optimistic level, mean, effective visits, eliminated options."""

    level: list[float]
    mean: list[float]
    visits: list[float]
    eliminated: list[bool]


def priors(
    ids: Sequence[str],
    costs: Sequence[float | None],
    descriptors: Sequence[Mapping[str, Any]],
    signal: Callable[[PheromoneUpdate], float],
    params: PheromoneParams,
    lam: float,
    scale: float,
    prior_weight: float,
) -> Priors:
    """The prior, ceiling and spread of each candidate at λ (per cost unit) and the cost unit ``scale`` (USD)."""
    lo, hi = 0.0, params.tau_max

    def sig(q: float, c: float | None) -> float:
        u = PheromoneUpdate("", "", "", {}, q, c, "", lam, scale)
        return min(hi, max(lo, params.q * signal(u)))

    prior, weight, ceiling, spread, bottoms, logp, fixed = [], [], [], [], [], [], []
    for c, d in zip(costs, descriptors, strict=True):
        top, bottom = sig(1.0, c), sig(0.0, c)
        ab = ability_of(d)
        if ab is None:
            prior.append(top)
            weight.append(params.prior_visits)
        else:
            a = min(1.0, max(0.0, ab))
            prior.append(a * top + (1.0 - a) * bottom)
            weight.append(prior_weight)
        fixed.append(ab is not None)
        ceiling.append(max(top, params.tau_min))
        spread.append(max(0.5 * (top - bottom), 1e-6))
        bottoms.append(bottom)
        logp.append(math.log(c) if c is not None and c > 0 else None)
    del ids
    return Priors(prior, weight, ceiling, spread, bottoms, logp, fixed)


def price_curve(pri: Priors, visits: Sequence[float], sums: Sequence[float], ridge: float = 2.0) -> list[float]:
    """Priors of the options without a descriptor from the quality-vs-log-price line fitted on what was seen.

    Each option's seen mean signal is turned back into a quality (the signal is affine in quality at a given
    price), and ``q = a + b·(log price − mean)`` is fitted by visit-weighted least squares, shrunk towards a flat
    line at the mean quality (``ridge`` pseudo-visits on the slope). Options with a descriptor, or without a price,
    keep their prior; with fewer than three seen options priced, every prior stays as it was (optimistic).
    """
    pts = [(x, (sums[j] / visits[j] - pri.bottom[j]) / (2.0 * pri.spread[j]), visits[j])
           for j, x in enumerate(pri.log_price) if x is not None and visits[j] > 0]
    if len(pts) < 3:
        return pri.prior
    tw = sum(v for _, _, v in pts)
    xm = sum(x * v for x, _, v in pts) / tw
    qm = sum(q * v for _, q, v in pts) / tw
    sxx = sum(v * (x - xm) ** 2 for x, _, v in pts)
    sxq = sum(v * (x - xm) * (q - qm) for x, q, v in pts)
    b = sxq / (sxx + ridge)
    out = list(pri.prior)
    for j, x in enumerate(pri.log_price):
        if x is not None and not pri.fixed[j]:
            q = min(1.0, max(0.0, qm + b * (x - xm)))
            out[j] = pri.bottom[j] + q * 2.0 * pri.spread[j]
    return out


def recovered(tau: float, visits: float, params: PheromoneParams) -> float:
    """The mean deposit of an edge from its level and visits (exact while the table averages, τ after)."""
    pv, t0 = params.prior_visits, params.initial
    if visits <= 0:
        return t0
    if params.rho <= 0 or pv + visits <= 1.0 / params.rho:
        return ((pv + visits) * tau - pv * t0) / visits
    return tau


def effective_visits(params: PheromoneParams) -> float:
    """How many visits an edge's level is worth at most: ``(2 − ρ)/ρ`` once it forgets at the rate ρ.

    An edge averages its first ``1/ρ`` visits, then moves as an exponential average whose noise is that of a mean
    over ``(2 − ρ)/ρ`` outcomes (99 at ρ = 0.02), however many visits it has. Counting every visit would shrink
    the confidence bounds below the level's real noise: after a few hundred visits a dip of the average would
    eliminate a good option, and an option's optimism would vanish.
    """
    return math.inf if params.rho <= 0 else (2.0 - params.rho) / params.rho


def _type_stats(table: PheromoneTable, t: str, point: str, prev: str, kappa: float, ids: Sequence[str],
                params: PheromoneParams) -> tuple[list[float], list[float]] | None:
    """``(mean deposit, effective visits)`` per candidate for one task type (``None``: no edge here)."""
    node = table.levels(t, point, "")
    if node is None:
        return None
    bonus = table.bonus(t, point, "") or {}
    means, visits = [], []
    trans = table.levels(t, point, prev) if kappa and prev else None
    tbonus = (table.bonus(t, point, prev) or {}) if trans is not None else {}
    cap = effective_visits(params)
    for cid in ids:
        b = bonus.get(cid)
        v = 0.0 if b is None else max(1.0 / (b * b) - 1.0, 0.0)
        m = recovered(node[cid], v, params) if v > 0 and cid in node else 0.0
        if trans is not None and v > 0:
            tb = tbonus.get(cid)
            tv = 0.0 if tb is None else max(1.0 / (tb * tb) - 1.0, 0.0)
            if tv > 0 and cid in trans:
                m = (1.0 - kappa) * m + kappa * recovered(trans[cid], tv, params)
        means.append(m)
        visits.append(min(v, cap))
    return means, visits


def estimate(
    table: PheromoneTable,
    types: Sequence[str],
    w: Mapping[str, float],
    point: str,
    prev: str,
    kappa: float,
    ids: Sequence[str],
    pri: Priors,
    *,
    optimism: float,
    pool: float,
    eliminate: float | None,
    min_visits: float,
    curve: bool = True,
    quality: bool = False,
) -> Estimate:
    """The pooled estimate of one decision (see the module docstring).

    ``quality``: the table's deposits are qualities (a colony that prices at each decision, ``reprice=True``);
    each mean is mapped onto the signal at this decision's λ and the option's price (affine between ``bottom`` and
    the signal at quality 1) before anything else reads it.
    """
    params = table.params
    n = len(ids)
    stats: dict[str, tuple[list[float], list[float]]] = {}
    for t in dict.fromkeys([*types, *w]):
        s = _type_stats(table, t, point, prev, kappa, ids, params)
        if s is not None:
            if quality:
                q = params.q
                s = ([pri.bottom[j] + (m / q) * 2.0 * pri.spread[j] for j, m in enumerate(s[0])], s[1])
            stats[t] = s
    tot_v = [0.0] * n
    tot_s = [0.0] * n
    for means, visits in stats.values():
        for j in range(n):
            tot_v[j] += visits[j]
            tot_s[j] += visits[j] * means[j]
    prior = price_curve(pri, tot_v, tot_s) if curve else pri.prior
    wsum = sum(w.values()) or 1.0
    mean = [0.0] * n
    eff = [0.0] * n
    ub = [0.0] * n
    lb = [0.0] * n
    ev = [0.0] * n
    z = eliminate or 0.0
    empty: tuple[list[float], list[float]] = ([0.0] * n, [0.0] * n)
    for t, wt in w.items():
        f = wt / wsum
        means, visits = stats.get(t, empty)
        for j in range(n):
            v, m = visits[j], means[j]
            ov = tot_v[j] - v  # what the other task types saw of this option
            om = (tot_s[j] - v * m) / ov if ov > 1e-12 else 0.0
            ps = pool * ov / (ov + pool) if pool > 0 and ov > 1e-12 else 0.0
            pw = pri.weight[j]
            base = (ps * om + pw * prior[j]) / (ps + pw)  # other types and the prior, as this type's prior
            k = ps + pw
            mean[j] += f * (v * m + k * base) / (v + k)
            eff[j] += f * (v + k)
            if z > 0:  # evidence only: the descriptor prior never eliminates an option
                ne = v + ps
                if ne > 1e-12:
                    me = (v * m + ps * om) / ne
                    half = z * pri.spread[j] / math.sqrt(ne)
                    ub[j] += f * min(pri.ceiling[j], me + half)
                    lb[j] += f * max(0.0, me - half)
                    ev[j] += f * ne
                else:
                    ub[j] += f * pri.ceiling[j]
    level = [
        max(params.tau_min, min(pri.ceiling[j], mean[j] + optimism * pri.spread[j] / math.sqrt(max(eff[j], 1e-12))))
        for j in range(n)
    ]
    out = [False] * n
    if z > 0:
        sure = [j for j in range(n) if ev[j] >= min_visits]
        if sure:
            top = max(sure, key=lb.__getitem__)
            out = [ub[j] < lb[top] and j != top for j in range(n)]  # the ceiling may cut an ub below its own lb
    return Estimate(level, mean, eff, out)


__all__ = ["ESTIMATES", "MANY_OPTIONS", "PRICE_GAP", "Estimate", "Priors", "effective_visits", "estimate",
           "price_curve", "priors", "recovered", "use_pooled"]
