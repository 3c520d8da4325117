"""Synthetic routing tables for the learn tests: outcomes depend on the query's topic, so routers can learn."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.data import RoutingTable
from agentroute.routing import Candidate, Observation, TaskInfo

OPTIONS = ["small", "medium", "large"]
PRICE = {"small": 1e-6, "medium": 5e-6, "large": 3e-5}  # USD per input token
# P(correct) by topic and option: small is fine on arithmetic, only large handles proofs
P_RIGHT = {
    "arith": {"small": 0.9, "medium": 0.92, "large": 0.95},
    "trivia": {"small": 0.35, "medium": 0.85, "large": 0.9},
    "proof": {"small": 0.05, "medium": 0.2, "large": 0.85},
}
WORDS = {
    "arith": ["add", "sum", "plus", "minus", "number", "digits", "total"],
    "trivia": ["capital", "river", "country", "author", "novel", "year", "famous"],
    "proof": ["prove", "theorem", "lemma", "integral", "converges", "bound", "induction"],
}


def make_table(n: int = 300, seed: int = 0, *, with_category: bool = True) -> RoutingTable:
    rng = np.random.default_rng(seed)
    topics = list(P_RIGHT)
    qids, texts, cats = [], [], []
    quality = np.zeros((n, len(OPTIONS)))
    cost = np.zeros((n, len(OPTIONS)))
    tokens = np.zeros((n, len(OPTIONS)))
    for i in range(n):
        t = topics[i % len(topics)]
        words = rng.choice(WORDS[t], size=int(rng.integers(4, 12)))
        text = f"Question {i}: " + " ".join(words) + "?" * int(rng.integers(1, 3))
        qids.append(f"q{i}")
        texts.append(text)
        cats.append(t if with_category else None)
        tok = max(1, len(text) // 4)
        for j, o in enumerate(OPTIONS):
            quality[i, j] = float(rng.random() < P_RIGHT[t][o])
            cost[i, j] = PRICE[o] * tok
            tokens[i, j] = tok
    return RoutingTable(
        qids,
        texts,
        cats,
        list(OPTIONS),
        quality,
        cost,
        tokens,
        np.full((n, len(OPTIONS)), np.nan),
        {"source": "synthetic"},
    )


def observation(text: str, category: str | None = None, ids: list[str] | None = None, **extra: object) -> Observation:
    ids = ids or list(OPTIONS)
    cands = tuple(Candidate(o, "model", rank=OPTIONS.index(o), cost_estimate=Decimal(str(PRICE[o] * 10))) for o in ids)
    return Observation(
        task=TaskInfo("t1", text, category),
        kind="model",
        point="answer.model",
        node="answer",
        step=0,
        history=(),
        budget=BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget()),
        candidates=cands,
        extra=dict(extra),
    )
