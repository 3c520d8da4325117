"""A table-fitted router in a graph (issue 18): refused at compile time when a tier is none of its options, mapped by
model name when the tier's model is one, and then it really routes (never "no candidate is a fitted option")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import agentroute as ar
from agentroute.data import RoutingTable
from agentroute.features import HashingFeaturizer
from agentroute.policies import make_router

MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o"]


def _table(options: list[str], n: int = 120) -> RoutingTable:
    rng = np.random.default_rng(0)
    hard = np.arange(n) % 2 == 1
    texts = [("prove the theorem step by step " if h else "add two and two ") + str(i) for i, h in enumerate(hard)]
    quality = np.stack([np.where(hard, 0.0, 1.0), np.ones(n)], axis=1)
    quality = np.clip(quality + rng.normal(0, 0.05, quality.shape), 0, 1)
    cost = np.tile([0.0001, 0.002], (n, 1))
    tokens = np.full((n, 2), 10.0)
    return RoutingTable([f"q{i}" for i in range(n)], texts, ["hard" if h else "easy" for h in hard], options,
                        quality, cost, tokens, np.full((n, 2), np.nan))


def _graph(tiers: list[Any]) -> Any:
    g = ar.AgentGraph("tiers")

    @g.agent(tiers=tiers)
    def answer(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"answer": ctx.complete([{"role": "user", "content": state["question"]}], max_tokens=16).text}

    g.start("answer")
    return g


@pytest.mark.parametrize("kind", ["linear", "prior", "bandit"])
def test_a_router_whose_options_are_none_of_the_tiers_is_refused_at_compile_time(kind: str) -> None:
    router = make_router(kind, featurizer=HashingFeaturizer(128, n_components=8)).fit(_table(["small", "large"]))
    g = _graph([ar.ModelTier("cheap", model="openai/gpt-4o-mini"), ar.ModelTier("dear", model="openai/gpt-4o")])
    with pytest.raises(ar.ConfigError) as e:
        g.compile(router, ar.providers.Simulated(seed=0))
    msg = str(e.value)
    assert "small" in msg and "large" in msg and "cheap" in msg and "dear" in msg  # the options and the tiers
    assert "model" in msg  # the hint: tiers are matched by their model's name too
    assert e.value.name == "cheap"


def test_tiers_whose_models_are_fitted_options_are_routed_as_those_options() -> None:
    router = make_router("linear", featurizer=HashingFeaturizer(256, use_category=False)).fit(_table(MODELS))
    router.cost_weight = 0.5 / router.cost_scale  # λ per USD
    g = _graph([ar.ModelTier("cheap", model=MODELS[0]), ar.ModelTier("dear", model=MODELS[1])])
    app = g.compile(router, ar.providers.Simulated(seed=0))  # no error: mapped by model name
    chosen = {}
    for q in ("add two and two 7", "prove the theorem step by step 9"):
        res = app.run({"question": q}, budget=ar.Budget(usd="0.05", steps=3))
        (d,) = [d for d in res.decisions if d.kind == "model"]
        assert "no candidate" not in d.reason
        chosen[q.split()[0]] = d.chosen
    assert chosen == {"add": "cheap", "prove": "dear"}  # it routes by the query, not to the cheapest


def test_one_unknown_tier_among_known_ones_is_refused_too() -> None:
    router = make_router("linear", featurizer=HashingFeaturizer(128, n_components=8)).fit(_table(MODELS))
    g = _graph([ar.ModelTier("cheap", model=MODELS[0]), ar.ModelTier("other", model="openai/gpt-4.1")])
    with pytest.raises(ar.ConfigError, match="other"):
        g.compile(router, ar.providers.Simulated(seed=0))
