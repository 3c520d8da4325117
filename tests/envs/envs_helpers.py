"""Small synthetic routing tables and graphs for the environment tests (no data folder needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.data import RoutingTable

if TYPE_CHECKING:
    from agentroute.graph import AgentGraph


def synthetic_table(n: int = 120, seed: int = 0) -> RoutingTable:
    """Two topics: 'easy' queries that the cheap option answers, 'hard' ones only the strong option answers.

    cheap: cost 0.0001, right on easy queries; strong: cost 0.001, right on every query; mid: cost 0.0004, right
    on easy queries and on half of the hard ones.
    """
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    texts = [
        (f"prove the theorem about primes number {i} step by step" if h else f"say hello to user {i}")
        for i, h in enumerate(hard)
    ]
    q = np.zeros((n, 3))
    q[:, 0] = (~hard).astype(float)
    q[:, 1] = 1.0
    q[:, 2] = np.where(hard, (np.arange(n) % 2 == 0).astype(float), 1.0)
    cost = np.tile([0.0001, 0.001, 0.0004], (n, 1))
    toks = np.full((n, 3), 20.0)
    return RoutingTable(
        query_ids=[f"q{i}" for i in range(n)],
        texts=texts,
        categories=["math" if h else "chat" for h in hard],
        options=["cheap", "strong", "mid"],
        quality=q,
        cost=cost,
        input_tokens=toks,
        output_tokens=toks.copy(),
        meta={"source": "synthetic"},
    )


def features(table: RoutingTable, dim: int = 6, seed: int = 0) -> np.ndarray:
    """Features that reveal the topic (first column) plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.1, size=(len(table), dim)).astype(np.float32)
    x[:, 0] = [1.0 if c == "math" else -1.0 for c in table.categories]
    return x


def ab_graph(*, fail_in: str | None = None) -> AgentGraph:
    """Two agents (draft, then optionally review) with two priced tiers; ``fail_in`` names an agent that raises."""
    import agentroute as ar

    tiers = [
        ar.ModelTier("small", model="openai/gpt-4o-mini"),
        ar.ModelTier("large", model="openai/gpt-4o"),
    ]
    g = ar.AgentGraph("ab")

    @g.agent(tiers=tiers)
    def draft(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if fail_in == "draft":
            raise RuntimeError("draft exploded")
        reply = ctx.complete([{"role": "user", "content": state["question"]}], max_tokens=64)
        return {"answer": reply.text}

    @g.agent(tiers=tiers)
    def review(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if fail_in == "review":
            raise RuntimeError("review exploded")
        reply = ctx.complete([{"role": "user", "content": state["question"]}], max_tokens=64)
        return {"answer": reply.text}

    g.start("draft")
    g.route("draft", to=["review", ar.END])
    return g


TASKS = [{"question": f"question number {i} about {'tax law' if i % 2 else 'weather'}"} for i in range(12)]
