"""The λ sweep: break-even points are exact, never lose hull area, and the category oracle sits where it should."""

from __future__ import annotations

import math

import numpy as np
import pytest
from learn_helpers import make_table

from agentroute.evaluation import (
    DEFAULT_COST_WEIGHTS,
    aiq,
    breakeven_weights,
    category_oracle_curve,
    evaluate,
    sweep,
    upper_hull,
)
from agentroute.features import HashingFeaturizer
from agentroute.policies import make_router


def test_breakeven_weights_hold_every_switch_point() -> None:
    # one query: cheap (q .5, c 1), mid (q .8, c 2), dear (q .9, c 5); scale 10
    q = np.array([[0.5, 0.8, 0.9]])
    c = np.array([[1.0, 2.0, 5.0]])
    lams = breakeven_weights(q, c, 10.0, n=3, base=())
    want = {round(v, 9) for v in (0.3 * 10 / 1, 0.1 * 10 / 3, 0.4 * 10 / 4)}  # (cheap, mid), (mid, dear), (cheap, dear)
    assert {round(v, 9) for v in lams} == want


def test_breakeven_weights_ignore_dominated_pairs_and_keep_the_grid() -> None:
    q = np.array([[0.9, 0.5]])  # the dearer option is worse: it never wins, no switch
    c = np.array([[1.0, 2.0]])
    assert breakeven_weights(q, c, 1.0) == DEFAULT_COST_WEIGHTS
    assert math.inf in breakeven_weights(np.array([[0.1, 0.9]]), c, 1.0)


def test_breakeven_sweep_never_loses_hull_area() -> None:
    train, test = make_table(450, seed=6), make_table(300, seed=7)
    r = make_router("linear", seed=0, featurizer=HashingFeaturizer(256)).fit(train)
    c_opt = test.cost.mean(axis=0)
    lo, hi = float(c_opt.min()), float(c_opt.max())
    dense = sweep(r, test)
    grid = sweep(r, test, DEFAULT_COST_WEIGHTS)
    assert len(dense.cost_weights) > len(grid.cost_weights)
    a_dense = aiq(upper_hull(dense.cost, dense.quality), lo, hi)
    a_grid = aiq(upper_hull(grid.cost, grid.quality), lo, hi)
    assert a_dense >= a_grid - 1e-12


def test_category_oracle_lies_between_the_zero_router_and_the_oracle() -> None:
    table = make_table(600, seed=8)  # outcomes depend on the topic (the category) and on per-query luck
    res = evaluate(table, {})
    cat = res["category_oracle"]
    assert res["zero_router"]["aiq"] < cat["aiq"] < res["oracle"]["aiq"]
    assert 0.0 < cat["gap_closed"] < 1.0
    cur = category_oracle_curve(table)
    assert len(cur.cost_weights) > len(DEFAULT_COST_WEIGHTS) and np.isfinite(cur.cost).all()


def test_category_oracle_equals_the_oracle_when_outcomes_are_per_category() -> None:
    table = make_table(300, seed=9)
    # outcome and cost a function of the topic only: then knowing the category is knowing everything
    for t in set(table.categories):
        m = np.asarray([c == t for c in table.categories])
        table.quality[m] = (table.quality[m].mean(axis=0) > 0.5).astype(float)[None, :]
        table.cost[m] = table.cost[m].mean(axis=0)[None, :]
    res = evaluate(table, {})
    assert abs(res["category_oracle"]["aiq"] - res["oracle"]["aiq"]) < 1e-9


def test_selection_prefers_the_lower_error_among_near_ties() -> None:
    from agentroute.policies.prior import aiq_tolerance, select_best

    scores = {"a": (0.800, 0.20), "b": (0.799, 0.10), "c": (0.700, 0.01)}
    assert select_best(scores, 0.002) == "b"  # within noise of the best AIQ, and better calibrated
    assert select_best(scores, 0.0) == "a"
    y = np.random.default_rng(0).random((400, 3)) < 0.5
    assert aiq_tolerance(y) == pytest.approx(0.5 * np.sqrt(0.25 / 400), rel=0.1)
