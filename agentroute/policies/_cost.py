"""What the cost weight λ means in every policy: quality given up per USD of cost.

A policy scores an option ``quality − λ · cost_usd``. Its own ``cost_weight`` is the default λ; a driver may set λ
per decision in ``obs.extra["cost_weight"]`` (per USD). A driver of an earlier release also put
``obs.extra["cost_scale"]`` beside it, meaning "λ per this many USD": :func:`decision_cost_weight` divides it out,
so every policy sees λ per USD whichever driver asked.
"""

from __future__ import annotations

import math
from typing import Any

from agentroute.errors import ConfigError
from agentroute.routing import Observation


def check_cost_weight(value: Any, *, name: str = "cost_weight", infinite: bool = True) -> float:
    """``value`` as a λ per USD: a number ≥ 0 (``inf``, only cost counts, when ``infinite``)."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}={value!r} must be a number >= 0 (λ per USD)", name=name) from None
    if isinstance(value, bool) or math.isnan(f) or f < 0 or (math.isinf(f) and not infinite):
        raise ConfigError(f"{name}={value!r} must be a number >= 0 (λ per USD)", name=name)
    return f


def decision_cost_weight(obs: Observation, default: float) -> float:
    """λ per USD for this decision: ``obs.extra["cost_weight"]`` when the driver set it, else ``default``."""
    extra = obs.extra
    if not extra:
        return default
    lam = extra.get("cost_weight")
    if lam is None:
        return default
    lam = float(lam)
    scale = extra.get("cost_scale")
    if scale is not None and float(scale) > 0:  # an earlier driver's λ per cost_scale USD
        lam = lam / float(scale)
    return lam


__all__ = ["check_cost_weight", "decision_cost_weight"]
