from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from envs_helpers import features, synthetic_table
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

import agentroute.envs
from agentroute.envs.query_routing import QueryRoutingEnv
from agentroute.errors import ConfigError, DataError

TABLE = synthetic_table()
X = features(TABLE)

VARIANTS = [
    {},
    {"cost_weight_range": (0.0, 2.0)},
    {"cost_weight_range": (0.0, 1.0), "cost_weight_sampling": "square"},
    {"reward": "budgetmem", "queries_per_episode": 4},
    {"reward": "boundary"},
    {"order": "sequential", "queries_per_episode": 3},
]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_passes_both_env_checkers(kw: dict[str, object]) -> None:
    env = QueryRoutingEnv(TABLE, features=X, **kw)  # type: ignore[arg-type]
    check_env(env, skip_render_check=True)
    sb3_check_env(env)


def test_registered_ids_make_the_env_and_registration_is_idempotent() -> None:
    agentroute.envs.register_envs()
    agentroute.envs.register_envs()
    for env_id in agentroute.envs.ENV_IDS:
        assert env_id in gym.registry
    env = gym.make("agentroute/QueryRouting-v0", table=TABLE, features=X, cost_weight=0.2)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (X.shape[1],)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("unit", ["usd", "scale"])
def test_rewards_are_the_tables_real_outcomes(unit: str) -> None:
    env = QueryRoutingEnv(TABLE, features=X, cost_weight=0.5, order="sequential", queries_per_episode=len(TABLE),
                          cost_unit=unit)
    env.reset(seed=0)
    scale = env.cost_scale
    assert scale == pytest.approx(0.001)  # the dearest option's mean cost
    per = 1.0 if unit == "usd" else scale  # λ per USD, or (cost_unit="scale") per cost scale
    assert env.describe()["cost_weight_unit"] == ("usd" if unit == "usd" else "cost_scale")
    rng = np.random.default_rng(0)
    for i in range(len(TABLE)):
        a = int(rng.integers(3))
        _obs, r, term, trunc, info = env.step(a)
        assert info["query_id"] == TABLE.query_ids[i]
        assert info["option"] == TABLE.options[a]
        assert r == pytest.approx(TABLE.quality[i, a] - 0.5 * TABLE.cost[i, a] / per)
        assert info["cost_usd"] == pytest.approx(TABLE.cost[i, a])
        assert term == (i == len(TABLE) - 1) and not trunc


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=0.0, max_value=3.0), st.floats(min_value=0.0, max_value=3.0), st.integers(0, 2**16))
def test_cost_weight_is_drawn_in_range_and_observed(a: float, b: float, seed: int) -> None:
    lo, hi = min(a, b), max(a, b)
    env = QueryRoutingEnv(TABLE, features=X, cost_weight_range=(lo, hi), observe_cost_weight=True)
    obs, info = env.reset(seed=seed)
    for _ in range(20):
        assert lo <= obs[-1] <= hi
        assert obs[-1] == pytest.approx(info["cost_weight"])
        assert obs in env.observation_space
        obs, _r, term, _, info = env.step(env.action_space.sample())
        assert term
        obs, info = env.reset()


def test_seeding_is_reproducible_and_options_pin_the_query() -> None:
    env = QueryRoutingEnv(TABLE, features=X, cost_weight_range=(0, 1))
    seq1 = [env.reset(seed=7)[1]["query_id"]] + [env.reset()[1]["query_id"] for _ in range(30)]
    seq2 = [env.reset(seed=7)[1]["query_id"]] + [env.reset()[1]["query_id"] for _ in range(30)]
    assert seq1 == seq2 and len(set(seq1)) > 5
    obs, info = env.reset(options={"query_index": 5, "cost_weight": 0.25})
    assert info["query_id"] == "q5" and obs[-1] == pytest.approx(0.25)
    assert env.action_masks().all()


def test_vectorised_runs_with_gymnasium_and_sb3() -> None:
    def make() -> QueryRoutingEnv:
        return QueryRoutingEnv(TABLE, features=X, cost_weight_range=(0, 1))

    vec = gym.vector.SyncVectorEnv([make for _ in range(4)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, X.shape[1] + 1)
    for _ in range(10):
        obs, rew, term, _trunc, _ = vec.step(vec.action_space.sample())
        assert rew.shape == (4,) and term.all()
    vec.close()
    dvec = DummyVecEnv([make for _ in range(3)])
    dvec.seed(0)
    o = dvec.reset()
    assert o.shape == (3, X.shape[1] + 1)
    o, _r, d, infos = dvec.step(np.array([0, 1, 2]))
    assert d.all() and "terminal_observation" in infos[0]
    dvec.close()


def test_misuse_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="not both"):
        QueryRoutingEnv(TABLE, features=X, cost_weight=0.1, cost_weight_range=(0, 1))
    with pytest.raises(ConfigError, match="cost_weight_range"):
        QueryRoutingEnv(TABLE, features=X, cost_weight_range=(1.0, 0.5))
    with pytest.raises(ConfigError, match="features"):
        QueryRoutingEnv(TABLE, features=X[:5])
    with pytest.raises(ConfigError, match="routing table"):
        QueryRoutingEnv()
    bad = synthetic_table()
    bad.cost[3, 1] = np.nan
    with pytest.raises(DataError, match="strong"):
        QueryRoutingEnv(bad, features=X)


def test_default_featurizer_is_fitted_on_the_table() -> None:
    env = QueryRoutingEnv(TABLE)
    assert env.featurizer is not None and env.feature_dim == env.featurizer.dim
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and np.isfinite(obs).all()


def test_many_steps_without_a_policy_keep_valid_observations() -> None:
    # Steps per second are measured by benchmarks/env_throughput.py, never asserted here.
    env = QueryRoutingEnv(TABLE, features=X, cost_weight_range=(0, 1))
    obs, _ = env.reset(seed=0)
    resets = 0
    for k in range(2_000):
        obs, reward, term, trunc, _ = env.step(k % 3)
        assert np.isfinite(reward) and env.observation_space.contains(obs)
        if term or trunc:
            obs, _ = env.reset()
            resets += 1
    assert resets > 0


def test_budgetmem_and_boundary_rewards_in_the_env() -> None:
    env = QueryRoutingEnv(TABLE, features=X, reward="boundary", cost_weight=0.5)
    assert (env.cheapest, env.strongest) == (0, 1)
    seen = set()
    env.reset(seed=0)
    for _ in range(60):
        _, _r, _, _, info = env.step(1)
        seen.add(info["difficulty"])
        assert "difficulty" not in env.observation_space.__dict__
        env.reset()
    assert seen == {"easy", "hard"}
    env = QueryRoutingEnv(TABLE, features=X, reward="budgetmem", cost_weight=1.0)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rs = [env.step(i % 3)[1] for i in range(30) if env.reset() is not None]
    assert all(np.isfinite(rs))


@pytest.mark.slow
def test_real_table_env(data_dir: object) -> None:
    from agentroute.data import load_builtin

    try:
        table = load_builtin("routellm").subset(range(300))
    except DataError as e:
        pytest.skip(str(e))
    env = QueryRoutingEnv(table, cost_weight_range=(0, 1))
    check_env(env, skip_render_check=True)
    assert env.cost_scale == pytest.approx(float(np.mean(table.cost[:, env.strongest])), rel=1e-6)
