from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.envs.rewards import (
    Boundary,
    BoundaryReward,
    BudgetMemReward,
    TradeoffReward,
    cost_scale,
    difficulty,
    make_reward,
)
from agentroute.errors import ConfigError

finite = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def test_cost_scale_is_the_mean_cost_of_the_dearest_option() -> None:
    c = np.array([[0.001, 0.01], [0.003, 0.03], [np.nan, 0.02]])
    assert cost_scale(c) == pytest.approx(0.02)
    assert cost_scale(np.full((3, 2), np.nan)) == 1.0
    assert cost_scale(np.zeros((2, 2))) == 1.0


@given(unit, finite, st.floats(min_value=0, max_value=5))
def test_tradeoff_is_quality_minus_weighted_cost(q: float, c: float, lam: float) -> None:
    assert TradeoffReward()(q, c, lam) == pytest.approx(q - lam * c)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(unit, finite), min_size=3, max_size=200), st.floats(min_value=0, max_value=3))
def test_budgetmem_cost_efficiency_is_bounded_and_orders_costs(outcomes: list[tuple[float, float]], lam: float) -> None:
    r = BudgetMemReward(window=50, refresh=7)
    for q, c in outcomes:
        out = r(q, c, lam)
        assert math.isfinite(out)
        # the cost term lies in [0, λ·α]: efficiency is in [0, 1]
        assert q - 1e-9 <= out <= q + lam * r.alpha + 1e-9
        assert 0.0 < r.alpha <= r.alpha_max
    costs = sorted(c for _, c in outcomes)
    effs = [1.0 - r.normalised_cost(c) for c in costs]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(effs))  # dearer is never more efficient


def test_budgetmem_normalises_over_a_sliding_window_and_aligns_scales() -> None:
    r = BudgetMemReward(window=100, refresh=1)
    rng = np.random.default_rng(0)
    for _ in range(300):
        r(float(rng.integers(0, 2)), float(rng.uniform(0, 4)), 1.0)
    # cost 0 is the cheapest seen: full efficiency; a cost above the 95th percentile: none
    assert r.normalised_cost(0.0) == 0.0
    assert r.normalised_cost(100.0) == 1.0
    # α makes the spread of the cost reward match the spread of the task reward (0/1 outcomes: std 0.5)
    eff_std = float(np.std(r._efficiency.values))
    q_std = float(np.std(r._quality.values))
    assert r.alpha * eff_std == pytest.approx(q_std, rel=0.05)
    # the window slides: after costs shift up by 10x, the old scale is forgotten
    for _ in range(100):
        r(1.0, float(rng.uniform(0, 40)), 1.0)
    assert r.normalised_cost(4.0) < 0.6
    r.reset()
    assert len(r._sqrt_costs) == 0


def test_boundary_difficulty_classes() -> None:
    assert difficulty(Boundary(0.9, 0.1, 1.0, 1.0)) == "easy"
    assert difficulty(Boundary(0.0, 0.1, 1.0, 1.0)) == "hard"
    assert difficulty(Boundary(0.1, 0.1, 0.2, 1.0)) == "unsolvable"


def test_boundary_reward_is_relative_to_the_two_rollouts() -> None:
    r = BoundaryReward(fail_penalty=0.5)
    hard = Boundary(q_lo=0.0, c_lo=0.1, q_hi=1.0, c_hi=1.1)
    # matching the strongest rollout at the strongest cost: gain 1, cost position 1
    assert r(1.0, 1.1, 0.3, hard) == pytest.approx(1.0 - 0.3)
    # solving it for less is better than solving it at full price
    assert r(1.0, 0.5, 0.3, hard) > r(1.0, 1.1, 0.3, hard)
    # the degenerate cheap failure on a hard task is penalised below the cheapest rollout's own score
    assert r(0.0, 0.1, 0.3, hard) == pytest.approx(-0.5)
    easy = Boundary(q_lo=1.0, c_lo=0.1, q_hi=1.0, c_hi=1.1)
    # on an easy task any extra spend is pure loss
    assert r(1.0, 0.1, 0.3, easy) > r(1.0, 1.1, 0.3, easy)
    with pytest.raises(ConfigError):
        r(1.0, 0.1, 0.3, None)


def test_make_reward_round_trips_and_rejects_unknown_modes() -> None:
    for mode in ("tradeoff", "budgetmem", "boundary"):
        rw = make_reward(mode)
        assert make_reward(rw.to_dict()).to_dict() == rw.to_dict()
    assert make_reward({"mode": "budgetmem", "window": 10}).window == 10  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="unknown reward mode"):
        make_reward("greedy")
    with pytest.raises(ConfigError):
        BudgetMemReward(window=1)


def test_auto_cost_weight_range_covers_every_switch_of_the_best_option() -> None:
    from agentroute.envs.rewards import auto_cost_weight_range

    # options (mean cost, mean quality): (1, 0.5), (2, 0.8), (10, 0.9), (5, 0.6) (dominated)
    q = np.array([[0.5, 0.8, 0.9, 0.6]])
    c = np.array([[1.0, 2.0, 10.0, 5.0]])  # cost scale = 10
    lo, hi = auto_cost_weight_range(q, c, margin=1.0)
    # in scale units: (0.1, 0.5), (0.2, 0.8), (1.0, 0.9): slopes 3.0 then 0.125 -> the steepest is 3.0
    assert lo == 0.0 and hi == pytest.approx(3.0)
    # above the top of the range the cheapest hull option is best; just below it, it is not
    scaled = c[0] / 10
    assert np.argmax(q[0] - (hi * 1.01) * scaled) == 0
    assert np.argmax(q[0] - (hi * 0.99) * scaled) == 1
    assert auto_cost_weight_range(np.array([[0.5, 0.5]]), np.array([[1.0, 2.0]])) == (0.0, 0.1)
