"""Calibrating a simulated world on real outcomes: item-response fit of option ability and query difficulty.

Given a routing table (what each real model scored on each real query), fit ``quality ≈ σ(2.5·(ability_j −
difficulty_i))`` by gradient descent on the cross-entropy with fractional targets (a Rasch model, as in item
response theory). The :class:`~agentroute.providers.Simulated` world uses the same link, so a graph run on the
calibrated world behaves like the real models did: strong options answer hard queries, weak ones do not.

Pure numpy; it never imports pandas, LiteLLM or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import DataError
from agentroute.providers._hash import _unit

if TYPE_CHECKING:
    from agentroute.data import RoutingTable

SLOPE = 2.5
"""The link's slope, shared with the simulated world."""


@dataclass(frozen=True)
class Calibration:
    """Fitted abilities per option, difficulties per query, and what each option costs and says."""

    options: tuple[str, ...]
    ability: np.ndarray
    difficulty: dict[str, float]
    """Fitted difficulty of each query text."""
    difficulty_mean: float
    difficulty_std: float
    output_tokens: dict[str, int]
    cost_per_token: dict[str, Decimal | None]
    """Mean USD per (input + output) token of each option, when the table has costs."""
    log_loss: float


def fit_irt(table: RoutingTable, *, iterations: int = 300, lr: float = 0.5, l2: float = 1e-3) -> Calibration:
    """Fit the Rasch model on ``table.quality`` (full batch, a few hundred steps; about a second for 5,000 queries)."""
    q = np.clip(np.asarray(table.quality, dtype=np.float64), 0.0, 1.0)
    if q.size == 0:
        raise DataError("cannot calibrate on an empty routing table")
    n, k = q.shape
    a = np.zeros(k)
    d = np.zeros(n)
    # start from logit of the mean scores: a fast, stable initialisation
    col = np.clip(q.mean(axis=0), 0.02, 0.98)
    row = np.clip(q.mean(axis=1), 0.02, 0.98)
    a = np.log(col / (1 - col)) / SLOPE
    d = -np.log(row / (1 - row)) / SLOPE
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-SLOPE * (a[None, :] - d[:, None])))
        g = (p - q) * SLOPE  # d(cross-entropy)/d(logit) times the slope
        a -= lr * (g.mean(axis=0) + l2 * a)
        d -= lr * (-g.mean(axis=1) + l2 * d)
    p = np.clip(1.0 / (1.0 + np.exp(-SLOPE * (a[None, :] - d[:, None]))), 1e-9, 1 - 1e-9)
    loss = float(-(q * np.log(p) + (1 - q) * np.log(1 - p)).mean())
    out_tok: dict[str, int] = {}
    per_tok: dict[str, Decimal | None] = {}
    for j, name in enumerate(table.options):
        ot = np.asarray(table.output_tokens[:, j], dtype=np.float64)
        out_tok[name] = int(np.nanmean(ot)) if np.isfinite(ot).any() else 160
        cost = np.asarray(table.cost[:, j], dtype=np.float64)
        toks = np.asarray(table.input_tokens[:, j], dtype=np.float64) + np.where(np.isfinite(ot), ot, out_tok[name])
        ok = np.isfinite(cost) & (toks > 0)
        per_tok[name] = Decimal(repr(float(cost[ok].sum() / toks[ok].sum()))) if ok.any() else None
    diff = {t: float(x) for t, x in zip(table.texts, d, strict=True)}
    return Calibration(tuple(table.options), a, diff, float(d.mean()), float(d.std() or 1.0), out_tok, per_tok,
                       loss)


def difficulty_lookup(cal: Calibration, seed: int) -> Any:
    """A difficulty function: the fitted value for a known query, a stable draw from the fitted spread otherwise."""
    def difficulty(text: str) -> float:
        known = cal.difficulty.get(text)
        if known is not None:
            return known
        u = min(max(_unit("difficulty", seed, text), 1e-6), 1 - 1e-6)
        z = math.sqrt(2) * _erfinv(2 * u - 1)
        return cal.difficulty_mean + cal.difficulty_std * z

    return difficulty


def _erfinv(y: float) -> float:
    # Winitzki's approximation, refined by two Newton steps: plenty for drawing difficulties.
    a = 0.147
    ln = math.log(1 - y * y)
    t = 2 / (math.pi * a) + ln / 2
    x = math.copysign(math.sqrt(math.sqrt(t * t - ln / a) - t), y)
    for _ in range(2):
        x -= (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x
