"""Metrics read off a cost–quality frontier: a capped hull, the cost to reach a quality, RouteLLM's APGR and CPT.

Pure numpy, no policy and no table. The hull itself (``upper_hull``, ``aiq``) lives with the routers that select by
it, in :mod:`agentroute.policies._frontier`; :mod:`agentroute.evaluation` builds the curves.
"""

from __future__ import annotations

import numpy as np


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


__all__ = ["apgr", "cap_hull", "cost_at_quality", "cpt"]
