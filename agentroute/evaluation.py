"""Cost–quality frontiers of routing policies on a routing table, and the metrics that compare them.

For a policy and a table, every query is routed at each λ of a sweep; each λ gives one point (mean USD cost per
query, mean quality). **λ (``cost_weight``) is per USD** in every argument and in every reported point. The default
sweeps are worked out in units of the cost scale, so they fit any table (a fixed log grid in units of
:meth:`~agentroute.data.table.RoutingTable.cost_scale` plus, for policies that predict outcomes and for the oracle,
quantiles of the λ at which their own choices switch, :func:`breakeven_weights`), and reported per USD. A policy
that predicts outcomes is swept in batch (``predict_outcomes`` and ``choose``); any other policy goes through the
routing kernel one query at a time (:class:`~agentroute.table_routing.TableRouter`: the same candidates and
observation as ``replay`` and a graph run, ``obs.extra["cost_weight"]`` in the policy's own unit). Against those
points stand every single option, the **zero router** (convex mixtures of single options: their upper hull) and the
**oracle** (per query, the best ``quality − λ·cost`` with the true outcomes).

Metrics (all on the evaluated table):

- **AIQ** (RouterBench): the area under the policy's *non-decreasing upper convex hull* ``H(c)`` over the common cost
  range ``[c_lo, c_hi]`` = [cheapest, dearest] single option's mean cost, divided by its width:
  ``AIQ = 1/(c_hi − c_lo) ∫ H(c) dc``. ``H`` interpolates linearly between hull vertices (mixing two operating
  points costs and scores the mix), stays flat after the best vertex (spending more never has to hurt), and is 0
  left of the policy's cheapest point (it cannot operate there). Every curve uses the same range, so AIQs compare.
- **gap closed**: ``(AIQ − AIQ_zero) / (AIQ_oracle − AIQ_zero)``. As a reference for what the query's category
  alone can give, the **category oracle** routes by the true per-category mean outcomes of the evaluated table.
  The **capped oracle** is the oracle's hull never above the best single option's mean quality: the share of the
  gap it closes is the most a router can close without beating the best option's quality (on 0/1 outcomes the
  rest of the gap is the oracle picking, per query, whichever model happened to be right).
- **quality at the best single option's cost** ``H(c_best)``, and **cost at its quality**: the least cost at which
  ``H`` reaches ``q_best`` (and its fraction of ``c_best``). The best single option has the highest mean quality.
- Two options only (RouteLLM): with *strong* the option of higher mean quality, the share ``s`` of strong calls
  replaces cost. **APGR** = ``∫₀¹ (q(s) − q_weak) ds / (q_strong − q_weak)`` by the trapezoid rule over the
  policy's (share, quality) curve, with the endpoints (0, q_weak) and (1, q_strong) every threshold router has;
  **CPT(p)** = the least share of strong calls whose quality reaches ``q_weak + p·(q_strong − q_weak)``.
  For policies that predict both outcomes, the curve sweeps the threshold on their predicted
  ``Δquality / Δcost`` (as RouteLLM sweeps its win-rate threshold), else λ.

Off-policy estimates from logged decisions (:func:`ips_estimate`, in :mod:`agentroute._offpolicy`): inverse
propensity scoring, self-normalised IPS and, given a reward model, doubly robust. The hull geometry lives in
:mod:`agentroute.policies._frontier` (hulls, AIQ, break-even λ) and :mod:`agentroute._metrics` (RouteLLM's
APGR and CPT, the capped hull). This module imports matplotlib only inside :func:`plot_frontier`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentroute._metrics import apgr, cap_hull, cost_at_quality, cpt
from agentroute._offpolicy import ips_estimate, ips_from_records
from agentroute.data.table import RoutingTable
from agentroute.errors import ConfigError
from agentroute.policies._frontier import (  # the geometry lives with the routers that select by it
    DEFAULT_COST_WEIGHTS,
    aiq,
    breakeven_weights,
    hull_value,
    upper_hull,
)
from agentroute.routing import implements
from agentroute.table_routing import TableRouter, lambda_extra

GENERIC_COST_WEIGHTS: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 20.0, math.inf)
"""A shorter grid (cost-scale units) for policies evaluated one decision at a time (no batch interface).

:data:`DEFAULT_COST_WEIGHTS` (:mod:`agentroute.policies._frontier`) is the default grid, also in units of the cost
scale, so it fits every table; curves report each point's λ per USD."""


@dataclass
class Curve:
    """Operating points of one policy: λ, mean cost (USD/query), mean quality and share of strong calls."""

    name: str
    cost_weights: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    strong_share: np.ndarray | None = None
    share_curve: tuple[np.ndarray, np.ndarray] | None = None
    """(share, quality) of a threshold sweep, for two-option tables."""
    extra: dict[str, Any] = field(default_factory=dict)




# ---------------------------------------------------------------------- sweeps


def _columns(policy: Any, table: RoutingTable) -> np.ndarray:
    opts = [str(o) for o in getattr(policy, "options", table.options)]
    missing = [o for o in table.options if o not in opts]
    if missing:
        raise ConfigError(
            f"policy {getattr(policy, 'name', policy)!r} does not know option(s) {missing} of the table",
            name=missing[0],
            hint="evaluate it on a table with the options it was fitted on",
        )
    return np.asarray([opts.index(o) for o in table.options])


def _point(table: RoutingTable, idx: np.ndarray) -> tuple[float, float]:
    rows = np.arange(len(table))
    return float(table.cost[rows, idx].mean()), float(table.quality[rows, idx].mean())


def strong_weak(table: RoutingTable) -> tuple[int, int]:
    """(strong, weak) columns of a two-option table: higher mean quality is strong (ties: higher cost)."""
    if table.n_options != 2:
        raise ConfigError("strong/weak needs a table with exactly two options", name="options")
    q, c = table.quality.mean(axis=0), np.nan_to_num(table.cost.mean(axis=0))
    strong = int(np.lexsort((c, q))[-1])
    return strong, 1 - strong


def _scaled(cost_weights: Sequence[float] | None, scale: float) -> tuple[float, ...] | None:
    """λ per USD (as given) in units of ``scale`` (the sweep's working unit); ``None`` stays ``None``."""
    return None if cost_weights is None else tuple(float(lam) * scale for lam in cost_weights)


def _curve(name: str, lams: Sequence[float], scale: float, cost: np.ndarray, quality: np.ndarray,
           share: np.ndarray | None = None) -> Curve:
    """A curve whose λ, worked out in units of ``scale``, is reported per USD."""
    per_usd = np.asarray(lams, dtype=np.float64) / scale
    return Curve(name, per_usd, cost, quality, share)


def oracle_curve(table: RoutingTable, cost_weights: Sequence[float] | None = None) -> Curve:
    """Per query and λ, the option with the best true ``quality − λ·cost`` (ties to the cheaper).

    ``cost_weights``: λ per USD (default: :data:`DEFAULT_COST_WEIGHTS`, a grid in units of the table's cost scale).
    """
    scale = table.cost_scale()
    lams = _scaled(cost_weights, scale) or DEFAULT_COST_WEIGHTS
    return _choice_curve("oracle", table, table.quality, table.cost, lams, scale)


def category_oracle_curve(table: RoutingTable, cost_weights: Sequence[float] | None = None) -> Curve:
    """The best any router can do from the query's category alone (a reference, not a policy).

    Per query and λ (per USD; default: the break-even points), the option with the best ``quality − λ·cost`` where
    quality and cost are the *true* means over the query's category in ``table``. Like the oracle it reads the
    evaluated outcomes: on tables whose quality is 0/1 the per-query oracle also profits from luck no predictor can
    see, and this curve shows how much of the zero router → oracle gap the category carries. Queries without a
    category form one group.
    """
    keys = [str(c) if c is not None else "" for c in table.categories]
    q, c = np.empty_like(table.quality), np.empty_like(table.cost)
    col = np.asarray(keys, dtype=object)
    for k in set(keys):
        m = col == k
        q[m], c[m] = table.quality[m].mean(axis=0), table.cost[m].mean(axis=0)
    scale = table.cost_scale()
    lams = _scaled(cost_weights, scale) or breakeven_weights(q, c, scale)
    return _choice_curve("category_oracle", table, q, c, lams, scale)


def _choose(q: np.ndarray, c: np.ndarray, lam: float, scale: float) -> np.ndarray:
    s = q - lam * c / scale if math.isfinite(lam) else -c
    tie = s >= s.max(axis=1, keepdims=True) - 1e-12
    out: np.ndarray = np.where(tie, c, np.inf).argmin(axis=1)
    return out


def _choice_curve(
    name: str, table: RoutingTable, q: np.ndarray, c: np.ndarray, lams: Sequence[float], scale: float
) -> Curve:
    pts = [_point(table, _choose(q, c, lam, scale)) for lam in lams]
    cost, qual = (np.asarray(v) for v in zip(*pts, strict=True))
    cur = _curve(name, lams, scale, cost, qual)
    if table.n_options == 2:
        strong, _ = strong_weak(table)
        cur.strong_share = np.asarray([float((_choose(q, c, lam, scale) == strong).mean()) for lam in lams])
    return cur


def sweep(
    policy: Any, table: RoutingTable, cost_weights: Sequence[float] | None = None, *, name: str | None = None
) -> Curve:
    """The policy's operating points on ``table`` over the λ sweep (see the module docstring for the dispatch).

    ``cost_weights`` is λ **per USD** (``None``: the default sweep of each path); the curve reports λ per USD.
    """
    label = name or str(getattr(policy, "name", type(policy).__name__))
    rows = np.arange(len(table))
    strong = strong_weak(table)[0] if table.n_options == 2 else None
    own = getattr(policy, "cost_scale", None)
    pscale = float(own) if isinstance(own, int | float) and own > 0 else float(table.cost_scale())
    predicted = policy.predict_outcomes(table.texts, table.categories) if implements(policy, "predict_outcomes") \
        else None
    if predicted is not None:
        cols = _columns(policy, table)
        qh, ch = predicted
        qh, ch = np.asarray(qh)[:, cols], np.asarray(ch)[:, cols]
        routes = getattr(policy, "kind", "") not in ("constant", "random")  # its choices depend on the query
        lams = _scaled(cost_weights, pscale) or (breakeven_weights(qh, ch, pscale) if routes else DEFAULT_COST_WEIGHTS)
        choices = [np.asarray(policy.choose(qh, ch, lam / pscale)) for lam in lams]  # policies take λ per USD
        cur = _from_choices(label, table, lams, pscale, choices, strong)
        if strong is not None and routes:
            weak = 1 - strong
            dq, dc = qh[:, strong] - qh[:, weak], ch[:, strong] - ch[:, weak]
            score = dq / np.maximum(dc, 1e-12)  # break-even λ (scale-free ranking)
            ths = np.unique(np.quantile(score, np.linspace(0, 1, 101)))
            shares, quals = [], []
            for th in ths:
                pick = np.where(score >= th, strong, weak)
                shares.append(float((pick == strong).mean()))
                quals.append(float(table.quality[rows, pick].mean()))
            cur.share_curve = (np.asarray(shares), np.asarray(quals))
        return cur
    if hasattr(policy, "predict") and getattr(policy, "featurizer", None) is not None:
        lams = tuple(lam for lam in (_scaled(cost_weights, pscale) or DEFAULT_COST_WEIGHTS) if math.isfinite(lam))
        cols = _columns(policy, table)
        inv = {int(c): j for j, c in enumerate(cols)}
        x = policy.featurizer.transform(table.texts, table.categories)
        choices = []
        for lam in lams:
            idx, _ = policy.predict(x, lam / pscale)  # policies take λ per USD
            choices.append(np.asarray([inv.get(int(i), -1) for i in idx]))
        return _from_choices(label, table, lams, pscale, choices, strong)
    scale = float(table.cost_scale())
    lams = _scaled(cost_weights, scale) or GENERIC_COST_WEIGHTS
    return _from_choices(label, table, lams, scale, [_decide_all(policy, table, lam / scale) for lam in lams],
                         strong)


def _from_choices(name: str, table: RoutingTable, lams: Sequence[float], scale: float,
                  choices: Sequence[np.ndarray], strong: int | None) -> Curve:
    for ch in choices:
        if (ch < 0).any():
            raise ConfigError(f"policy {name!r} chose an option that is not in the table", name=name)
    pts = [_point(table, ch) for ch in choices]
    cost, qual = (np.asarray(v) for v in zip(*pts, strict=True))
    share = None if strong is None else np.asarray([float((ch == strong).mean()) for ch in choices])
    return _curve(name, lams, scale, cost, qual, share)


def _decide_all(policy: Any, table: RoutingTable, cost_weight: float) -> np.ndarray:
    """The table's option index chosen for every query, through the kernel and ``policy.decide``.

    λ is ``cost_weight`` per USD; the policy is frozen (no feedback).
    """
    driver = TableRouter(table, policy, extra=lambda_extra(cost_weight, policy), node="eval", learn=False,
                         reveal_category=True)
    out = np.empty(len(table), dtype=np.int64)
    for i in range(len(table)):
        choice = driver.decide(i)
        out[i] = driver.column_of(choice)
        choice.release()
    return out


# ---------------------------------------------------------------------- the report


def _hull_list(h: np.ndarray) -> list[list[float]]:
    return [[float(c), float(q)] for c, q in h]


def evaluate(
    table: RoutingTable, policies: Mapping[str, Any], cost_weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """Frontier metrics of every policy on ``table`` (a JSON-safe dict, the content of ``metrics.json``).

    ``cost_weights``: the λ to sweep, **per USD** (``None``: each curve's default sweep); every point's
    ``cost_weight`` in the report is per USD.
    """
    if not table.has_cost:
        raise ConfigError("evaluation needs every cost of the table", name="cost_usd", hint="add prices first")
    q_opt, c_opt = table.quality.mean(axis=0), table.cost.mean(axis=0)
    c_lo, c_hi = float(c_opt.min()), float(c_opt.max())
    best = int(np.lexsort((c_opt, -q_opt))[0])
    q_best, c_best = float(q_opt[best]), float(c_opt[best])
    zero = upper_hull(c_opt, q_opt)
    scale = table.cost_scale()
    oracle_lams = cost_weights if cost_weights is not None else [
        lam / scale for lam in breakeven_weights(table.quality, table.cost, scale)]
    oracle = oracle_curve(table, oracle_lams)
    oracle_hull = upper_hull(oracle.cost, oracle.quality)
    aiq_zero, aiq_oracle = aiq(zero, c_lo, c_hi), aiq(oracle_hull, c_lo, c_hi)
    cat_curve = category_oracle_curve(table, cost_weights)
    cat_hull = upper_hull(cat_curve.cost, cat_curve.quality)
    aiq_cat = aiq(cat_hull, c_lo, c_hi)
    aiq_capped = aiq(cap_hull(oracle_hull, q_best), c_lo, c_hi)
    out: dict[str, Any] = {
        "table": {
            "n_queries": len(table),
            "options": list(table.options),
            "cost_range": [c_lo, c_hi],
            "cost_scale": table.cost_scale(),
            "cost_weight_unit": "usd",
            "meta": {k: v for k, v in table.meta.items() if isinstance(v, str | int | float)},
        },
        "single_options": {
            o: {"cost": float(c_opt[j]), "quality": float(q_opt[j])} for j, o in enumerate(table.options)
        },
        "best_single": {"option": table.options[best], "cost": c_best, "quality": q_best},
        "zero_router": {"aiq": aiq_zero, "hull": _hull_list(zero)},
        "oracle": {"aiq": aiq_oracle, "hull": _hull_list(oracle_hull)},
        "oracle_capped_at_best_single": {
            "aiq": aiq_capped,
            "gap_closed": (aiq_capped - aiq_zero) / (aiq_oracle - aiq_zero) if aiq_oracle > aiq_zero else None,
            "note": "reference: the oracle's frontier never above the best single option's mean quality; the most "
                    "of the gap a router can close without beating that option's quality",
        },
        "category_oracle": {
            "aiq": aiq_cat,
            "gap_closed": (aiq_cat - aiq_zero) / (aiq_oracle - aiq_zero) if aiq_oracle > aiq_zero else None,
            "hull": _hull_list(cat_hull),
            "note": "reference: true per-category mean outcomes of the evaluated table (no router can know them)",
        },
        "policies": {},
        "definitions": "see agentroute.evaluation (AIQ over the common cost range of the single options)",
    }
    two = table.n_options == 2
    if two:
        s, w = strong_weak(table)
        out["two_options"] = {"strong": table.options[s], "weak": table.options[w]}
        assert oracle.strong_share is not None
        out["oracle"]["apgr"] = apgr(oracle.strong_share, oracle.quality, float(q_opt[w]), float(q_opt[s]))
    curves = {}
    for name, pol in policies.items():
        cur = sweep(pol, table, cost_weights, name=name)
        curves[name] = cur
        h = upper_hull(cur.cost, cur.quality)
        a = aiq(h, c_lo, c_hi)
        c_at = cost_at_quality(h, q_best)
        rec: dict[str, Any] = {
            "aiq": a,
            "gap_closed": (a - aiq_zero) / (aiq_oracle - aiq_zero) if aiq_oracle > aiq_zero else None,
            "beats_zero_router": bool(a > aiq_zero),
            "max_quality": float(cur.quality.max()),
            "quality_at_best_single_cost": hull_value(h, c_best),
            "cost_at_best_single_quality": c_at,
            "cost_fraction_at_best_single_quality": None if c_at is None else c_at / c_best,
            "hull": _hull_list(h),
            "points": [
                {"cost_weight": _json_float(lam), "cost": float(c), "quality": float(q)}
                for lam, c, q in zip(cur.cost_weights, cur.cost, cur.quality, strict=True)
            ],
        }
        if two:
            s, w = strong_weak(table)
            share, qual = cur.share_curve if cur.share_curve is not None else (cur.strong_share, cur.quality)
            assert share is not None
            rec["apgr"] = apgr(share, qual, float(q_opt[w]), float(q_opt[s]))
            rec["cpt50"] = cpt(share, qual, float(q_opt[w]), float(q_opt[s]), 0.5)
            rec["cpt80"] = cpt(share, qual, float(q_opt[w]), float(q_opt[s]), 0.8)
        out["policies"][name] = rec
    out["_curves"] = curves  # dropped by write_report; kept for plotting
    return out


def _json_float(v: float) -> float | str:
    return "inf" if math.isinf(v) else float(v)


def write_report(result: dict[str, Any], out_dir: str | Path, *, title: str = "") -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``frontier.png`` into ``out_dir``; returns both paths."""
    import json

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    metrics = {k: v for k, v in result.items() if not k.startswith("_")}
    mpath = d / "metrics.json"
    mpath.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    png = d / "frontier.png"
    plot_frontier(result, png, title=title)
    return mpath, png


def plot_frontier(result: dict[str, Any], path: str | Path, *, title: str = "") -> None:
    """The cost–quality plot: each policy's points and hull, single options, zero router and oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for o, v in result["single_options"].items():
        ax.scatter(v["cost"], v["quality"], marker="s", color="grey", s=22, zorder=3)
        ax.annotate(o.split("/")[-1], (v["cost"], v["quality"]), xytext=(4, 2), textcoords="offset points",
                    fontsize=6, color="dimgrey")  # offset: the marker would hide the first letter

    def dense(h: np.ndarray) -> np.ndarray:  # mixtures are straight in linear cost, curved on the log axis
        if len(h) < 2:
            return h
        segs = [np.linspace(h[i], h[i + 1], 24, endpoint=False) for i in range(len(h) - 1)]
        return np.vstack([*segs, h[-1:]])

    z = dense(np.asarray(result["zero_router"]["hull"]))
    if len(z):
        ax.plot(z[:, 0], z[:, 1], "--", color="grey", label=f"zero router (AIQ {result['zero_router']['aiq']:.3f})")
    o = dense(np.asarray(result["oracle"]["hull"]))
    if len(o):
        ax.plot(o[:, 0], o[:, 1], ":", color="black", label=f"oracle (AIQ {result['oracle']['aiq']:.3f})")
    for name, rec in result["policies"].items():
        h = dense(np.asarray(rec["hull"]))
        pts = np.asarray([[p["cost"], p["quality"]] for p in rec["points"]])
        (line,) = ax.plot(h[:, 0], h[:, 1], "-", label=f"{name} (AIQ {rec['aiq']:.3f})") if len(h) else (None,)
        if len(pts) and line is not None:
            ax.scatter(pts[:, 0], pts[:, 1], s=8, color=line.get_color(), alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or "cost–quality frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)




__all__ = [
    "DEFAULT_COST_WEIGHTS",
    "GENERIC_COST_WEIGHTS",
    "Curve",
    "aiq",
    "apgr",
    "breakeven_weights",
    "category_oracle_curve",
    "cost_at_quality",
    "cpt",
    "evaluate",
    "hull_value",
    "ips_estimate",
    "ips_from_records",
    "oracle_curve",
    "plot_frontier",
    "strong_weak",
    "sweep",
    "upper_hull",
    "write_report",
]
