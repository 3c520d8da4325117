"""Table-fitted routers by their ``agentroute fit --policy`` name.

The one module that knows every table-router family (predictive, prior, ensemble, bandit); none of them imports it,
so the families stay free of import cycles.
"""

from __future__ import annotations

from typing import Any

from agentroute.errors import ConfigError
from agentroute.policies._table import TableRouter

POLICY_NAMES = (
    "prior", "ensemble", "graph", "text", "knn", "linear", "mlp", "bandit", "random", "cheapest", "strongest", "ppo",
)


def make_router(name: str, *, seed: int = 0, cost_weight: float | None = None, **kw: Any) -> TableRouter:
    """An unfitted router by its ``agentroute fit --policy`` name (all but ``ppo``); ``cost_weight`` is λ per USD."""
    from agentroute.policies.predictive import ConstantRouter, KNNRouter, LinearRouter, MLPRouter, RandomRouter

    common: dict[str, Any] = {"seed": seed, "cost_weight": cost_weight}
    if name == "knn":
        return KNNRouter(**kw, **common)
    if name == "linear":
        return LinearRouter(**kw, **common)
    if name == "mlp":
        return MLPRouter(**kw, **common)
    if name == "prior":
        from agentroute.policies.prior import PriorRouter

        return PriorRouter(**kw, **common)
    if name == "text":
        from agentroute.policies.text import TextRouter

        return TextRouter(**kw, **common)
    if name == "graph":
        from agentroute.policies.graph import GraphRouter

        return GraphRouter(**kw, **common)
    if name == "ensemble":
        from agentroute.policies.ensemble import EnsembleRouter

        return EnsembleRouter(**kw, **common)
    if name in ("cheapest", "strongest"):
        return ConstantRouter(name, **common)
    if name == "random":
        return RandomRouter(**common)
    if name in ("bandit", "linucb", "thompson"):
        from agentroute.policies.bandit import LinUCBPolicy, ThompsonPolicy

        return (ThompsonPolicy if name == "thompson" else LinUCBPolicy).for_table(**kw, **common)
    raise ConfigError(f"unknown policy {name!r}", name=name, hint=f"use one of {', '.join(POLICY_NAMES)}")


__all__ = ["POLICY_NAMES", "make_router"]
