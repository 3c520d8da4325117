"""Shared builders for the pheromone tests: synthetic routing tables and observations."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.data.table import RoutingTable
from agentroute.routing import Candidate, Observation, TaskInfo

BUDGET = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())


def synthetic_table(
    n: int = 600,
    probs: dict[str, Sequence[float]] | None = None,
    costs: Sequence[float] = (0.001, 0.002, 0.004),
    seed: int = 0,
) -> RoutingTable:
    """Binary outcomes drawn per (category, option) with the given success probabilities."""
    probs = probs or {"math": (0.2, 0.5, 0.9), "chat": (0.8, 0.4, 0.5)}
    rng = np.random.default_rng(seed)
    cats = list(probs)
    k = len(costs)
    words = {"math": "solve integral equation derivative sum", "chat": "hello tell story friend weather"}
    qids, texts, categories = [], [], []
    quality = np.zeros((n, k))
    for i in range(n):
        c = cats[i % len(cats)]
        qids.append(f"q{i}")
        base = words.get(c, c)
        texts.append(f"{base} {' '.join(rng.choice(base.split(), 3))} #{i}")
        categories.append(c)
        quality[i] = (rng.random(k) < np.asarray(probs[c])).astype(float)
    cost = np.tile(np.asarray(costs, dtype=float), (n, 1))
    tokens = np.full((n, k), 10.0)
    return RoutingTable(qids, texts, categories, [f"opt{j}" for j in range(k)], quality, cost, tokens, tokens.copy())


def cands(ids: Sequence[str] = ("a", "b", "c"), costs: Sequence[float | None] | None = None,
          ability: Sequence[float | None] | None = None, latency: float | None = None) -> tuple[Candidate, ...]:
    out = []
    for i, cid in enumerate(ids):
        c = None if costs is None else costs[i]
        d: dict[str, float] = {}
        if ability is not None and ability[i] is not None:
            d["ability"] = float(ability[i])  # type: ignore[arg-type]
        out.append(Candidate(cid, "model", rank=i, cost_estimate=None if c is None else Decimal(str(c)),
                             latency_estimate=latency, descriptor=d))
    return tuple(out)


def obs(task: str = "t1", candidates: tuple[Candidate, ...] | None = None, *, point: str = "model",
        text: str = "", category: str | None = None, intent: dict[str, float] | None = None,
        history: tuple[tuple[str, str], ...] = (), extra: dict[str, float] | None = None) -> Observation:
    return Observation(
        task=TaskInfo(task, text=text, category=category, intent=intent),
        kind="model",
        point=point,
        node="n",
        step=len(history),
        history=history,
        budget=BUDGET,
        candidates=candidates or cands(),
        extra=extra or {},
    )
