"""The geometry of cost–quality frontiers: upper hulls, AIQ, and RouteLLM's APGR and CPT.

Pure numpy, no policy and no table: :mod:`agentroute.evaluation` builds the curves and reads them with these.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np


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


def cap_hull(hull: np.ndarray, q: float) -> np.ndarray:
    """``min(H, q)`` as a hull: the vertices under ``q`` and the point where ``H`` reaches it (flat after)."""
    if len(hull) == 0 or hull[-1, 1] <= q:
        return hull
    c = cost_at_quality(hull, q)
    assert c is not None  # the hull reaches past q
    return np.vstack([hull[hull[:, 1] < q], [[c, q]]])  # H crosses q after its last vertex below q


def cost_at_quality(hull: np.ndarray, q: float) -> float | None:
    """Least cost at which ``H`` reaches quality ``q`` (``None`` if it never does)."""
    if len(hull) == 0 or hull[-1, 1] < q - 1e-12:
        return None
    if hull[0, 1] >= q:
        return float(hull[0, 0])
    return float(np.interp(q, hull[:, 1], hull[:, 0]))  # hull quality is increasing


def apgr(share: np.ndarray, quality: np.ndarray, q_weak: float, q_strong: float) -> float:
    """RouteLLM's average performance gap recovered over the (strong share, quality) curve."""
    s, q = _share_curve(share, quality, q_weak, q_strong)
    gap = q_strong - q_weak
    if abs(gap) < 1e-12:
        return float("nan")
    return float(np.trapezoid((q - q_weak) / gap, s))


def cpt(share: np.ndarray, quality: np.ndarray, q_weak: float, q_strong: float, p: float) -> float | None:
    """RouteLLM's call-performance threshold: least strong share reaching ``q_weak + p·(q_strong − q_weak)``."""
    s, q = _share_curve(share, quality, q_weak, q_strong)
    target = q_weak + p * (q_strong - q_weak)
    for i in range(len(s)):
        if q[i] >= target - 1e-12:
            if i == 0:
                return float(s[0])
            s0, s1, q0, q1 = s[i - 1], s[i], q[i - 1], q[i]
            return float(s0 + (s1 - s0) * ((target - q0) / (q1 - q0))) if q1 != q0 else float(s1)
    return None


def _share_curve(
    share: np.ndarray, quality: np.ndarray, q_weak: float, q_strong: float
) -> tuple[np.ndarray, np.ndarray]:
    s = np.concatenate([[0.0], np.asarray(share, dtype=np.float64), [1.0]])
    q = np.concatenate([[q_weak], np.asarray(quality, dtype=np.float64), [q_strong]])
    order = np.lexsort((q, s))
    return s[order], q[order]


__all__ = ["aiq", "apgr", "cap_hull", "cost_at_quality", "cpt", "hull_value", "upper_hull"]
