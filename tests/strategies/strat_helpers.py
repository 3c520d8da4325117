"""A small recorded table (the shape RouterBench has) for the strategies tests."""

from __future__ import annotations

import numpy as np

from agentroute.data import RoutingTable

OPTIONS = ("cheap-a", "cheap-b", "cheap-c", "strong")
COST = (0.0001, 0.0002, 0.0003, 0.005)


def mc_table(n: int = 12, seed: int = 0) -> RoutingTable:
    """``n`` multiple-choice queries: cheap models agree on the easy half (right), disagree on the hard half.

    ``strong`` answers every query right. Gold answers cycle A-D; a wrong answer is the next letter.
    """
    rng = np.random.default_rng(seed)
    letters = "ABCD"
    texts, cats, quality, cost, resp = [], [], [], [], []
    for i in range(n):
        gold = letters[i % 4]
        texts.append(f"Question {i}: which option?\nA) one\nB) two\nC) three\nD) four\nAnswer:")
        cats.append("arc-challenge")
        hard = i % 2 == 1
        row_q, row_r = [], []
        for j, _ in enumerate(OPTIONS):
            right = not hard or j == 3 or (j == 0)
            ans = gold if right else letters[(i + j) % 4 if (i + j) % 4 != i % 4 else (i + 1) % 4]
            row_q.append(1.0 if ans == gold else 0.0)
            row_r.append(f"The answer is {ans}." if j == 1 else ans)
        quality.append(row_q)
        resp.append(row_r)
        cost.append([c * (1 + 0.1 * rng.random()) for c in COST])
    return RoutingTable(
        query_ids=[f"q{i}" for i in range(n)], texts=texts, categories=cats, options=list(OPTIONS),
        quality=np.asarray(quality), cost=np.asarray(cost), input_tokens=np.full((n, 4), 40.0),
        output_tokens=np.full((n, 4), 2.0), responses=np.asarray(resp, dtype=object),
    )
