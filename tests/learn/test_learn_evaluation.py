from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_helpers import make_table

from agentroute.data import RoutingTable
from agentroute.errors import ConfigError
from agentroute.evaluation import (
    aiq,
    apgr,
    cap_hull,
    cost_at_quality,
    cpt,
    evaluate,
    hull_value,
    ips_estimate,
    oracle_curve,
    sweep,
    upper_hull,
    write_report,
)
from agentroute.features import HashingFeaturizer
from agentroute.policies import make_router
from agentroute.policies.baselines import Cheapest, Strongest

points = st.lists(st.tuples(st.floats(0, 10).map(lambda v: round(v, 4)), st.floats(0, 1)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(pts=points)
def test_hull_is_non_decreasing_concave_and_dominates(pts: list[tuple[float, float]]) -> None:
    c, q = np.asarray(pts).T
    h = upper_hull(c, q)
    assert (np.diff(h[:, 0]) > 0).all() and (np.diff(h[:, 1]) >= -1e-12).all()
    for a, b, c2 in zip(h[:-2], h[1:-1], h[2:], strict=True):  # every middle vertex lies above its chord
        assert (b[0] - a[0]) * (c2[1] - a[1]) - (b[1] - a[1]) * (c2[0] - a[0]) < 1e-12
    for ci, qi in pts:
        if ci >= h[0, 0]:
            assert hull_value(h, ci) >= qi - 1e-9
    assert h[-1, 1] == pytest.approx(q.max())


@settings(max_examples=25, deadline=None)
@given(pts=points, lo=st.floats(0, 5), width=st.floats(0.1, 5))
def test_aiq_is_a_mean_height(pts: list[tuple[float, float]], lo: float, width: float) -> None:
    c, q = np.asarray(pts).T
    h = upper_hull(c, q)
    a = aiq(h, lo, lo + width)
    assert -1e-12 <= a <= q.max() + 1e-12
    grid = np.linspace(lo, lo + width, 2001)
    approx = np.mean([hull_value(h, x) for x in grid])
    assert a == pytest.approx(approx, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(pts=points, q=st.floats(0, 1))
def test_a_capped_hull_is_the_hull_cut_at_q(pts: list[tuple[float, float]], q: float) -> None:
    c, qual = np.asarray(pts).T
    h = upper_hull(c, qual)
    capped = cap_hull(h, q)
    for x in np.linspace(0, 11, 57):
        want = min(hull_value(h, x), q) if x >= h[0, 0] else 0.0
        assert hull_value(capped, x) == pytest.approx(want, abs=1e-9)
    assert aiq(capped, 0, 10) <= aiq(h, 0, 10) + 1e-12


def test_aiq_known_values() -> None:
    h = upper_hull([0.0, 1.0], [0.5, 1.0])
    assert aiq(h, 0.0, 1.0) == pytest.approx(0.75)
    assert aiq(upper_hull([0.5], [1.0]), 0.0, 1.0) == pytest.approx(0.5)  # zero before its cheapest point
    assert cost_at_quality(h, 0.75) == pytest.approx(0.5)
    assert cost_at_quality(h, 1.1) is None


def test_apgr_and_cpt_definitions() -> None:
    # a router that only has the endpoints (RouteLLM's random router in expectation) recovers half the gap
    assert apgr(np.array([]), np.array([]), 0.6, 0.8) == pytest.approx(0.5)
    share = np.array([0.2, 0.5])
    qual = np.array([0.76, 0.8])  # 80% of the gap at 20% of strong calls, all of it at 50%
    assert apgr(share, qual, 0.6, 0.8) == pytest.approx(0.2 * 0.4 + 0.3 * 0.9 + 0.5 * 1.0)
    assert cpt(share, qual, 0.6, 0.8, 0.5) == pytest.approx(0.125)
    assert cpt(share, qual, 0.6, 0.8, 0.8) == pytest.approx(0.2)


def _two_option_table(n: int = 400, seed: int = 0) -> RoutingTable:
    t = make_table(n, seed=seed)
    return t.select_options(["small", "large"])


def test_evaluate_orders_oracle_policy_and_baselines(tmp_path) -> None:
    train, test = make_table(450, seed=2).split(0.3, seed=1)
    knn = make_router("knn", seed=0, featurizer=HashingFeaturizer(256)).fit(train)
    res = evaluate(test, {"knn": knn, "cheapest": Cheapest(), "strongest": Strongest()})
    pol = res["policies"]
    assert res["oracle"]["aiq"] >= pol["knn"]["aiq"] > res["zero_router"]["aiq"]
    capped = res["oracle_capped_at_best_single"]
    assert res["zero_router"]["aiq"] <= capped["aiq"] <= res["oracle"]["aiq"] and 0 <= capped["gap_closed"] <= 1
    assert pol["knn"]["gap_closed"] > 0.2 and pol["knn"]["beats_zero_router"]
    best = res["best_single"]
    assert best["option"] == "large"
    assert pol["knn"]["quality_at_best_single_cost"] >= best["quality"] - 0.02
    assert (
        pol["knn"]["cost_fraction_at_best_single_quality"] is None
        or pol["knn"]["cost_fraction_at_best_single_quality"] < 1.0
    )
    assert pol["cheapest"]["max_quality"] == pytest.approx(res["single_options"]["small"]["quality"])
    assert "apgr" not in pol["knn"]
    mpath, png = write_report(res, tmp_path / "out")
    assert mpath.exists() and png.stat().st_size > 1000
    assert "_curves" not in mpath.read_text()


def test_two_option_tables_get_apgr_and_cpt() -> None:
    train, test = _two_option_table(600, seed=3).split(0.3, seed=0)
    lin = make_router("linear", seed=0, featurizer=HashingFeaturizer(256)).fit(train)
    res = evaluate(test, {"linear": lin, "cheap": make_router("cheapest").fit(train)})
    assert res["two_options"] == {"strong": "large", "weak": "small"}
    rec = res["policies"]["linear"]
    assert rec["apgr"] > 0.6 and rec["cpt50"] is not None and rec["cpt50"] < 0.5
    assert res["policies"]["cheap"]["apgr"] == pytest.approx(0.5)
    assert res["oracle"]["apgr"] >= rec["apgr"]


def test_oracle_extremes() -> None:
    t = make_table(60)
    cur = oracle_curve(t, [0.0, math.inf])
    assert cur.quality[0] == pytest.approx(t.quality.max(axis=1).mean())
    assert cur.cost[1] == pytest.approx(t.cost.min(axis=1).mean())


def test_generic_policies_go_through_decide() -> None:
    t = make_table(30)
    cur = sweep(Strongest(), t, [0.0, 1.0])
    assert np.allclose(cur.cost, t.cost[:, 2].mean())


def test_evaluate_needs_costs() -> None:
    t = make_table(20)
    t.cost[:] = np.nan
    with pytest.raises(ConfigError, match="cost"):
        evaluate(t, {})


def test_ips_is_unbiased_under_uniform_logging() -> None:
    rng = np.random.default_rng(0)
    n, k = 20000, 3
    true_means = np.array([0.2, 0.5, 0.9])
    actions = rng.integers(0, k, n)
    rewards = (rng.random(n) < true_means[actions]).astype(float)
    target = np.array([0.0, 0.0, 1.0])  # always option 2
    est = ips_estimate(rewards, np.full(n, 1 / k), target[actions])
    assert est["ips"] == pytest.approx(0.9, abs=0.03) and est["snips"] == pytest.approx(0.9, abs=0.02)
    assert est["ess"] == pytest.approx(n / 3, rel=0.05)
    dr = ips_estimate(
        rewards,
        np.full(n, 1 / k),
        target[actions],
        reward_hat_logged=true_means[actions],
        reward_hat_target=np.full(n, 0.9),
    )
    assert dr["dr"] == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ConfigError):
        ips_estimate([1.0], [0.0], [1.0])
    with pytest.raises(ConfigError):
        ips_estimate([1.0, 2.0], [0.5], [1.0])
