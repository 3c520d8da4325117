"""Reward modes shared by the routing environments: ``tradeoff``, ``budgetmem`` and ``boundary``.

Every mode turns one outcome (the quality a task reached, what it cost) into a scalar, given the price weight λ.
Costs reach a reward already divided by the environment's **cost scale** (:func:`cost_scale`: the mean USD cost of
always taking the most expensive option), so λ means the same thing on every table: at λ = 1, paying as much as the
priciest option costs on average is worth one whole unit of quality.

- ``tradeoff``: ``quality − λ·cost``.
- ``budgetmem`` (after BudgetMem, Zhang et al. 2026, arXiv:2602.06025): ``quality + λ·α·r_cost``. The cost reward
  ``r_cost = 1 − ĉ`` is a cost *efficiency* in [0, 1], where ``ĉ`` normalises ``sqrt(cost)`` between the 5th and 95th
  percentiles of a sliding window of recent costs (clipped); ``α = std(quality) / std(r_cost)`` over the same window
  aligns the two scales, so neither term swamps the other whatever the prices are.
- ``boundary`` (after BoPO, Zhang et al. 2026, arXiv:2602.21227): the outcome is placed between two boundary rollouts
  of the same task, always-cheapest (``lo``) and always-strongest (``hi``): quality gain ``(q − q_lo) / max(|q_hi −
  q_lo|, δ)`` minus λ times the cost position ``(c − c_lo) / max(c_hi − c_lo, ε)``, and a penalty when a task that
  the strongest solves is failed (the degenerate cheap-failure policy). The task's difficulty class
  (:func:`difficulty`) goes to ``info`` only; it is never part of the observation.

This module is numpy-only and holds no environment state beyond the reward's own windows. It is the one home of
these rewards: the query, graph and memory-tier environments all score with them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentroute.errors import ConfigError

REWARD_MODES = ("tradeoff", "budgetmem", "boundary")
DIFFICULTIES = ("easy", "hard", "unsolvable")


@dataclass(frozen=True, slots=True)
class Boundary:
    """Outcomes of the two boundary rollouts of one task: always-cheapest (``lo``) and always-strongest (``hi``).

    Costs are in cost-scale units, like every cost a reward sees.
    """

    q_lo: float
    c_lo: float
    q_hi: float
    c_hi: float


def difficulty(b: Boundary, success: float = 0.5) -> str:
    """``easy`` when the cheapest rollout succeeds, ``hard`` when only the strongest does, else ``unsolvable``."""
    if b.q_lo >= success:
        return "easy"
    if b.q_hi >= success:
        return "hard"
    return "unsolvable"


def cost_scale(cost: np.ndarray) -> float:
    """The documented cost unit of a table: mean USD cost of the option whose mean cost is highest.

    ``cost`` is ``(n_queries, n_options)`` USD. NaN entries are ignored; a table with no positive cost has scale 1.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.size == 0:
        return 1.0
    known = ~np.isnan(c)
    counts = known.sum(axis=0)
    sums = np.where(known, c, 0.0).sum(axis=0)
    means = sums[counts > 0] / counts[counts > 0]
    top = float(means.max()) if means.size else 0.0
    return top if top > 0 else 1.0


def auto_cost_weight_range(quality: np.ndarray, cost: np.ndarray, *, margin: float = 3.0) -> tuple[float, float]:
    """A λ range (cost-scale units) that covers every price at which the best single option changes.

    Along the upper convex hull of the options' (mean cost / scale, mean quality), the best option at λ changes where
    λ equals a hull segment's slope; the steepest segment is at the cheap end. The range is ``(0, margin × steepest
    slope)`` (at least 0.1), so the top of the range already prefers the cheapest option on the hull.
    """
    q = np.asarray(quality, dtype=np.float64).mean(axis=0)
    c = np.asarray(cost, dtype=np.float64)
    c = np.where(np.isnan(c), 0.0, c).mean(axis=0) / cost_scale(cost)
    order = np.lexsort((-q, c))
    hull: list[tuple[float, float]] = []
    for j in order:
        p = (float(c[j]), float(q[j]))
        if hull and p[1] <= hull[-1][1]:
            continue  # dearer and no better: never on the rising hull
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1):
                hull.pop()  # hull[-1] lies under the chord: not a vertex
            else:
                break
        hull.append(p)
    slopes = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in itertools.pairwise(hull) if x2 > x1]
    top = max(slopes, default=0.0) * margin
    return (0.0, float(max(0.1, top)))


class Reward:
    """A reward mode. ``__call__(quality, cost, lam, bounds)``; ``cost`` is in cost-scale units."""

    name = "reward"
    needs_boundaries = False

    def __call__(self, quality: float, cost: float, lam: float, bounds: Boundary | None = None) -> float:
        """The scalar reward of one outcome."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget any running statistics (a fresh training run)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, for a policy's card."""
        return {"mode": self.name}


class TradeoffReward(Reward):
    """``quality − λ·cost``."""

    name = "tradeoff"

    def __call__(self, quality: float, cost: float, lam: float, bounds: Boundary | None = None) -> float:
        """See the module docstring."""
        return quality - lam * cost


class _Window:
    """A fixed-size ring buffer of floats with lazily refreshed statistics (no per-call sorting)."""

    __slots__ = ("_buf", "_n", "_pos")

    def __init__(self, size: int) -> None:
        self._buf = np.zeros(size, dtype=np.float64)
        self._n = 0
        self._pos = 0

    def push(self, x: float) -> None:
        self._buf[self._pos] = x
        self._pos = (self._pos + 1) % self._buf.size
        self._n = min(self._n + 1, self._buf.size)

    @property
    def values(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self._n = 0
        self._pos = 0


class BudgetMemReward(Reward):
    """BudgetMem's reward: task reward plus a window-normalised, scale-aligned cost efficiency (module docstring).

    ``window`` is the number of recent outcomes the normalisation and the alignment see; the percentiles and the
    two standard deviations are recomputed every ``refresh`` calls (the window moves slowly, and sorting it on every
    step would dominate an environment step). ``alpha_max`` bounds α while the window is still nearly constant.
    """

    name = "budgetmem"

    def __init__(
        self,
        window: int = 2000,
        *,
        low_pct: float = 5.0,
        high_pct: float = 95.0,
        refresh: int = 64,
        alpha_max: float = 10.0,
    ) -> None:
        if window < 2:
            raise ConfigError(f"BudgetMemReward: window={window} must be >= 2", name="window")
        if not 0.0 <= low_pct < high_pct <= 100.0:
            raise ConfigError(
                f"BudgetMemReward: need 0 <= low_pct < high_pct <= 100, got {low_pct}, {high_pct}", name="low_pct"
            )
        if refresh < 1:
            raise ConfigError(f"BudgetMemReward: refresh={refresh} must be >= 1", name="refresh")
        self.window = int(window)
        self.low_pct = float(low_pct)
        self.high_pct = float(high_pct)
        self.refresh = int(refresh)
        self.alpha_max = float(alpha_max)
        self._sqrt_costs = _Window(self.window)
        self._quality = _Window(self.window)
        self._efficiency = _Window(self.window)
        self.reset()

    def reset(self) -> None:
        """Empty the windows."""
        self._sqrt_costs.clear()
        self._quality.clear()
        self._efficiency.clear()
        self._calls = 0
        self._lo = 0.0
        self._hi = 1.0
        self.alpha = 1.0
        self.last_efficiency = 0.0
        """``r_cost`` of the last outcome scored (the memory environment reports it in ``info``)."""

    def _refresh(self) -> None:
        s = self._sqrt_costs.values
        lo, hi = np.percentile(s, [self.low_pct, self.high_pct])
        if hi <= lo:  # a constant window: keep a unit span so the cost still orders outcomes
            hi = lo + (abs(lo) if lo > 0 else 1.0)
        self._lo, self._hi = float(lo), float(hi)
        if len(self._quality) >= 2:
            sq = float(np.std(self._quality.values))
            se = float(np.std(self._efficiency.values))
            self.alpha = min(self.alpha_max, max(sq, 1e-3) / max(se, 1e-3))

    def normalised_cost(self, cost: float) -> float:
        """``ĉ`` in [0, 1] for ``cost`` against the current window (without adding it)."""
        x = (math.sqrt(max(cost, 0.0)) - self._lo) / (self._hi - self._lo)
        return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x

    def __call__(self, quality: float, cost: float, lam: float, bounds: Boundary | None = None) -> float:
        """Add the outcome to the window, then score it (module docstring)."""
        self._sqrt_costs.push(math.sqrt(max(cost, 0.0)))
        if self._calls % self.refresh == 0 or self._calls < self.refresh:
            self._refresh()
        self._calls += 1
        eff = 1.0 - self.normalised_cost(cost)
        self._quality.push(quality)
        self._efficiency.push(eff)
        self.last_efficiency = eff
        return quality + lam * self.alpha * eff

    def to_dict(self) -> dict[str, Any]:
        """See :meth:`Reward.to_dict`."""
        return {
            "mode": self.name,
            "window": self.window,
            "low_pct": self.low_pct,
            "high_pct": self.high_pct,
            "refresh": self.refresh,
            "alpha_max": self.alpha_max,
        }


class BoundaryReward(Reward):
    """BoPO-style reward relative to the always-cheapest and always-strongest rollouts (module docstring).

    ``success`` is the quality that counts as solving a task; ``fail_penalty`` is subtracted when a ``hard`` task
    (one only the strongest solves) is failed; ``min_gap`` is δ, the smallest quality span used to scale the gain.
    """

    name = "boundary"
    needs_boundaries = True

    def __init__(self, success: float = 0.5, fail_penalty: float = 0.5, min_gap: float = 0.1) -> None:
        if not min_gap > 0.0:
            raise ConfigError(f"BoundaryReward: min_gap={min_gap} must be > 0", name="min_gap")
        self.success = float(success)
        self.fail_penalty = float(fail_penalty)
        self.min_gap = float(min_gap)

    def __call__(self, quality: float, cost: float, lam: float, bounds: Boundary | None = None) -> float:
        """Score ``quality``/``cost`` between the boundaries of the same task."""
        if bounds is None:
            raise ConfigError("the boundary reward needs the task's boundary rollouts", name="bounds")
        gain = (quality - bounds.q_lo) / max(abs(bounds.q_hi - bounds.q_lo), self.min_gap)
        span = bounds.c_hi - bounds.c_lo
        position = (cost - bounds.c_lo) / span if span > 1e-12 else (cost - bounds.c_lo)
        r = gain - lam * position
        if bounds.q_lo < self.success <= bounds.q_hi and quality < self.success:
            r -= self.fail_penalty
        return r

    def to_dict(self) -> dict[str, Any]:
        """See :meth:`Reward.to_dict`."""
        return {
            "mode": self.name,
            "success": self.success,
            "fail_penalty": self.fail_penalty,
            "min_gap": self.min_gap,
        }


def make_reward(spec: str | Reward | dict[str, Any], **kwargs: Any) -> Reward:
    """A :class:`Reward` from its mode name (with keyword settings), its ``to_dict()`` form, or itself."""
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, dict):
        kwargs = {**{k: v for k, v in spec.items() if k != "mode"}, **kwargs}
        spec = str(spec.get("mode", ""))
    if spec == "tradeoff":
        return TradeoffReward()
    if spec == "budgetmem":
        return BudgetMemReward(**kwargs)
    if spec == "boundary":
        return BoundaryReward(**kwargs)
    raise ConfigError(f"unknown reward mode {spec!r}", name=str(spec), hint=f"use one of {', '.join(REWARD_MODES)}")


__all__ = [
    "DIFFICULTIES",
    "REWARD_MODES",
    "Boundary",
    "BoundaryReward",
    "BudgetMemReward",
    "Reward",
    "TradeoffReward",
    "auto_cost_weight_range",
    "cost_scale",
    "difficulty",
    "make_reward",
]
