"""Calibrate a fitted router's cost weight λ to a target, offline (RouteLLM's threshold calibration).

RouteLLM calibrates its router's threshold on a sample of queries so that a chosen share of them goes to the strong
model. :func:`calibrate` does the same for any table router (:class:`~agentroute.policies._table.TableRouter`): on a
calibration table (the training table, or a split of its own) it finds the λ per USD at which routing the table's
queries spends the target USD per query (``spend``; the options' recorded costs, the router's predicted cost where the
table has none) or sends the target share of them to the strong option or a dearer one (``strong_share``; the strong
option defaults to the one of highest mean cost; counting the dearer ones too keeps the share falling as λ grows when
the strong option is not the dearest). Spend and share fall as λ grows, so λ is found by bisection in log λ; of the two
ends of the final bracket the one whose rate is nearer the target is kept (a finite table's rate is a step function of
λ).

A target outside what the router can reach on the table, between λ = ∞ (the cheapest choice everywhere it predicts
one) and λ = 0 (its best predicted quality), is a :class:`~agentroute.errors.ConfigError` naming the feasible range.
The result is written into the router: its ``cost_weight`` and ``card["calibration"]`` (saved with it). To hold the
target on a live stream as well, wrap the router in :class:`~agentroute.policies.TargetSpend` /
:class:`~agentroute.policies.TargetShare`, which start from that λ.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

KINDS = ("spend", "strong_share")
_SPAN = 30.0  # log λ·cost_scale searched in [-30, 30]: from "quality only" to "cost only" on any real table
_ITERS = 60


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` found (stored on the router's card as ``calibration``)."""

    kind: str
    """``spend`` (USD per query) or ``strong_share``."""
    target: float
    cost_weight: float
    """The λ per USD chosen."""
    achieved: float
    """The rate at that λ on the calibration table."""
    feasible: tuple[float, float]
    """The lowest (λ = ∞) and highest (λ = 0) rate the router reaches on the calibration table."""
    quality: float
    """Mean recorded quality of the choices at that λ on the calibration table."""
    strong: str | None
    n_queries: int
    source: str
    categories: bool = True
    """Whether the calibration queries were routed with their categories."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        d = asdict(self)
        d["feasible"] = list(self.feasible)
        return d


def _describe(kind: str, v: float) -> str:
    return f"${v:.6g} per query" if kind == "spend" else f"a strong share of {v:.4g}"


def calibrate(router: Any, table: RoutingTable, *, spend: float | None = None, strong_share: float | None = None,
              strong: str | None = None, categories: bool = True, apply: bool = True) -> Calibration:
    """λ per USD at which ``router`` meets ``spend`` (USD per query) or ``strong_share`` on ``table``.

    ``strong`` names the strong option (default: the one of highest mean cost on ``table``); a share counts the
    queries routed to it or to an option of higher mean cost. With ``apply`` (the
    default) the router's ``cost_weight`` is set to it and the result is written to ``router.card["calibration"]``.
    ``categories=False`` routes the calibration queries without their categories: calibrate so when the router will
    be served without them (a replay, graph tasks that carry none), since a router that reads the category chooses
    differently without it (on RouterBench the linear router spends 4× more at the same λ).
    """
    if (spend is None) == (strong_share is None):
        raise ConfigError("calibrate needs exactly one target: spend=USD per query or strong_share=S",
                          name="target")
    kind = "spend" if spend is not None else "strong_share"
    target = float(spend if spend is not None else strong_share)  # type: ignore[arg-type]
    hi_ok = 1.0 if kind == "strong_share" else math.inf
    if not (math.isfinite(target) and 0.0 <= target <= hi_ok):
        raise ConfigError(f"{kind} target {target!r} must be a number >= 0" + (" and <= 1" if hi_ok == 1 else ""),
                          name=f"target_{kind}")
    choose = getattr(router, "choose", None)
    predict = getattr(router, "predict_outcomes", None)
    if not callable(choose) or not callable(predict) or getattr(router, "kind", "") == "random":
        raise ConfigError(f"{getattr(router, 'name', type(router).__name__)} cannot be calibrated: it does not "
                          "choose by E[quality] − λ·E[cost]", name="policy",
                          hint="calibrate a fitted table router (prior, linear, knn, ...), or hold any policy to "
                               "the target online with TargetSpend / TargetShare")
    if len(table) == 0:
        raise ConfigError("cannot calibrate on an empty table", name="table")
    options = list(router.options)
    col = [options.index(o) if o in options else -1 for o in table.options]
    if -1 in col or len(col) != len(options):
        raise ConfigError(f"the calibration table's options ({', '.join(table.options)}) are not the router's "
                          f"({', '.join(options)})", name="table")
    q_hat, c_hat = predict(list(table.texts), list(table.categories) if categories else [None] * len(table))
    true_cost = np.asarray(table.cost, dtype=np.float64)[:, np.argsort(col)]  # router's option order
    cost = np.where(np.isnan(true_cost), c_hat, true_cost)
    quality = np.asarray(table.quality, dtype=np.float64)[:, np.argsort(col)]
    rows = np.arange(len(table))
    if kind == "strong_share":
        if strong is None:
            strong = options[int(np.nanmean(cost, axis=0).argmax())]
        if strong not in options:
            raise ConfigError(f"strong option {strong!r} is not one of the router's options", name="strong",
                              hint=f"one of: {', '.join(options)}")
        mean_cost = np.nanmean(cost, axis=0)
        dear = mean_cost >= mean_cost[options.index(strong)]  # the strong option and any dearer one

    def rate(lam: float) -> float:
        idx = choose(q_hat, c_hat, lam)
        return float(cost[rows, idx].mean()) if kind == "spend" else float(np.mean(dear[idx]))

    scale = float(getattr(router, "cost_scale", 1.0) or 1.0)
    lo_v, hi_v = rate(math.inf), rate(0.0)
    slack = 1e-9 * max(1.0, abs(target))
    if not lo_v - slack <= target <= hi_v + slack:
        name = getattr(router, "kind", getattr(router, "name", "router"))
        raise ConfigError(
            f"target {_describe(kind, target)} is out of reach of the {name} router on "
            f"{table.meta.get('source', 'the calibration table')}: it ranges from {_describe(kind, lo_v)} "
            f"(λ=∞, the cheapest choices) to {_describe(kind, hi_v)} (λ=0, the best predicted quality)",
            name=f"target_{kind}", hint="choose a target in that range")
    a, b = -_SPAN, _SPAN  # rate(a) >= target >= rate(b) (rate falls as λ grows)
    for _ in range(_ITERS):
        mid = 0.5 * (a + b)
        if rate(math.exp(mid) / scale) > target:
            a = mid
        else:
            b = mid
    cands = [math.exp(b) / scale, math.exp(a) / scale, 0.0]  # ties go to the larger λ: the cheaper routing
    lam = min(cands, key=lambda x: abs(rate(x) - target))
    idx = choose(q_hat, c_hat, lam)
    q = quality[rows, idx]
    cal = Calibration(kind, target, lam, rate(lam), (lo_v, hi_v), float(np.nanmean(q)) if q.size else math.nan,
                      strong, len(table), str(table.meta.get("source", "")), categories)
    if apply:
        router.cost_weight = lam
        card = getattr(router, "card", None)
        if isinstance(card, dict):
            card["calibration"] = cal.to_dict()
    return cal


__all__ = ["KINDS", "Calibration", "calibrate"]
