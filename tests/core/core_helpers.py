"""Small graph builders shared by the core tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import agentroute as ar

PRICED = (
    ar.ModelTier("small", model="openai/gpt-4o-mini"),
    ar.ModelTier("large", model="openai/gpt-4o"),
)


def custom_tiers(p_small: str = "0.000001", p_large: str = "0.00001") -> tuple[ar.ModelTier, ...]:
    return (
        ar.ModelTier("small", model="test/small", input_cost_per_token=Decimal(p_small) / 4,
                     output_cost_per_token=Decimal(p_small), max_tokens=200),
        ar.ModelTier("large", model="test/large", input_cost_per_token=Decimal(p_large) / 4,
                     output_cost_per_token=Decimal(p_large), max_tokens=400),
    )


def two_agent_graph(tiers: Any = PRICED, *, is_async: bool = False) -> ar.AgentGraph:
    g = ar.AgentGraph("support")
    if is_async:
        async def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            r = await ctx.acomplete([{"role": "user", "content": state["question"]}])
            return {"draft": r.text}

        async def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            r = await ctx.acomplete([{"role": "user", "content": state["draft"]}], max_tokens=300)
            return {"answer": r.text}
    else:
        def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            r = ctx.complete([{"role": "user", "content": state["question"]}])
            return {"draft": r.text}

        def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            r = ctx.complete([{"role": "user", "content": state["draft"]}], max_tokens=300)
            return {"answer": r.text}
    g.add_agent("triage", triage, tiers=tiers)
    g.add_agent("expert", expert, tiers=tiers)
    g.start("triage")
    g.route("triage", to=["expert", ar.END])
    return g


def within(result: ar.RunResult) -> bool:
    s, lim = result.spent, result.limits
    return not ((lim.usd is not None and s.usd is not None and s.usd > lim.usd)
                or (lim.tokens is not None and s.tokens > lim.tokens)
                or (lim.steps is not None and s.steps > lim.steps))
