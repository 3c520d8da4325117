"""Cost–quality frontier geometry shared by model selection and evaluation.

The upper hull, its mean (AIQ), and the λ at which a router's choices change.
numpy only. :mod:`agentroute.evaluation` reports with these; the category-prior and ensemble routers select their
hyper-parameters with them (inside the training table), so both see the same frontier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

DEFAULT_COST_WEIGHTS: tuple[float, ...] = (0.0, *np.geomspace(1e-3, 1e3, 61).tolist(), math.inf)
"""λ sweep in cost-scale units: 0, 61 log-spaced values from 1e-3 to 1e3, and ∞ (cheapest predicted)."""
BREAKEVEN_POINTS = 400
"""How many break-even λ (quantiles) :func:`breakeven_weights` adds to the fixed grid."""


def breakeven_weights(
    q: np.ndarray, c: np.ndarray, scale: float, *, n: int = BREAKEVEN_POINTS, base: Sequence[float] | None = None
) -> tuple[float, ...]:
    """The fixed λ grid plus ``n`` quantiles of the λ at which some query's choice changes.

    For predicted (or, for the oracle, true) quality ``q`` and cost ``c`` ``(n_queries, n_options)``, a query
    switches between options ``i`` (cheaper) and ``j`` (dearer, better) at ``λ = (q_j − q_i)·scale/(c_j − c_i)``.
    A fixed log grid (10 per decade) steps over many of those switches and loses operating points, so the hull
    loses area that the policy really has; sampling the switch points themselves (as RouteLLM sweeps its
    threshold over the scores' quantiles) traces the frontier the policy can actually reach. Only the given
    ``q`` / ``c`` are used: a policy's sweep depends on its own predictions, never on the true outcomes.
    """
    grid = DEFAULT_COST_WEIGHTS if base is None else tuple(base)
    q, c = np.asarray(q, dtype=np.float64), np.asarray(c, dtype=np.float64)
    if q.ndim != 2 or q.shape != c.shape or q.shape[1] < 2 or n <= 0:
        return tuple(grid)
    i, j = np.triu_indices(q.shape[1], k=1)
    dq, dc = q[:, j] - q[:, i], c[:, j] - c[:, i]
    # orient every pair as (cheaper → dearer); a switch exists only when the dearer one is also better
    sign = np.where(dc >= 0, 1.0, -1.0)
    dq, dc = dq * sign, dc * sign
    ok = (dc > 0) & (dq > 0) & np.isfinite(dq) & np.isfinite(dc)
    lam = dq[ok] * scale / dc[ok]
    if lam.size == 0:
        return tuple(grid)
    qs = np.unique(np.quantile(lam, np.linspace(0.0, 1.0, n)))
    return tuple(sorted({*grid, *qs.tolist()}))


def upper_hull(cost: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray) -> np.ndarray:
    """Vertices ``(m, 2)`` of the non-decreasing upper convex hull of the points, by increasing cost."""
    pts = np.column_stack([np.asarray(cost, dtype=np.float64), np.asarray(quality, dtype=np.float64)])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return np.zeros((0, 2))
    pts = pts[np.lexsort((-pts[:, 1], pts[:, 0]))]
    hull: list[np.ndarray] = []
    for p in pts:
        if hull and p[0] == hull[-1][0]:
            continue  # same cost, lower quality (sorted): dominated
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] not above the chord
                hull.pop()
            else:
                break
        hull.append(p)
    h = np.asarray(hull)
    top = int(np.argmax(h[:, 1]))
    return h[: top + 1]


def hull_value(hull: np.ndarray, c: float) -> float:
    """``H(c)``: the hull's quality at cost ``c`` (0 left of its first vertex, flat right of its last)."""
    if len(hull) == 0 or c < hull[0, 0]:
        return 0.0
    return float(np.interp(c, hull[:, 0], hull[:, 1]))


def aiq(hull: np.ndarray, c_lo: float, c_hi: float) -> float:
    """Mean of ``H`` over ``[c_lo, c_hi]`` (exact for the piecewise-linear hull); ``H(c_hi)`` if the range is empty."""
    if len(hull) == 0:
        return 0.0
    if not c_hi > c_lo:
        return hull_value(hull, c_hi)
    xs = np.unique(np.clip(np.concatenate([[c_lo, c_hi], hull[:, 0]]), c_lo, c_hi))
    total = 0.0
    for a, b in pairwise(xs):
        if b <= hull[0, 0]:
            continue
        a2 = max(a, hull[0, 0])
        ya = float(np.interp(a2, hull[:, 0], hull[:, 1]))
        yb = float(np.interp(b, hull[:, 0], hull[:, 1]))
        total += (b - a2) * (ya + yb) / 2.0
    return total / (c_hi - c_lo)


__all__ = ["BREAKEVEN_POINTS", "DEFAULT_COST_WEIGHTS", "aiq", "breakeven_weights", "hull_value", "upper_hull"]
