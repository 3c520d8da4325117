from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
import pytest
from envs_helpers import TASKS, ab_graph
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

import agentroute as ar
from agentroute.envs.graph_routing import GraphRoutingEnv


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("agentroute-env-")]


@pytest.fixture(scope="module")
def env() -> GraphRoutingEnv:
    e = GraphRoutingEnv(ab_graph(), tasks=TASKS, cost_weight_range=(0.0, 1.0))
    yield e
    e.close()


def test_passes_both_env_checkers(env: GraphRoutingEnv) -> None:
    check_env(env, skip_render_check=True)
    sb3_check_env(env)
    fixed = GraphRoutingEnv(ab_graph(), tasks=TASKS, cost_weight=0.3, reward="boundary")
    check_env(fixed, skip_render_check=True)
    sb3_check_env(fixed)
    fixed.close()


def test_one_step_per_routing_point_of_the_real_runtime(env: GraphRoutingEnv) -> None:
    assert isinstance(env.app, ar.App)
    assert env.obs_spec.actions[:3] == ("draft", "review", "__end__")
    obs, info = env.reset(seed=3)
    steps, total = 0, 0.0
    lam = info["cost_weight"]
    while True:
        mask = env.action_masks()
        offered = {c.id for c in env._obs.candidates}  # type: ignore[union-attr]
        assert {a for a, ok in zip(env.obs_spec.actions, mask, strict=True) if ok} == offered
        a = int(np.flatnonzero(mask)[-1])  # always the strongest offered
        obs, r, term, trunc, info = env.step(a)
        steps += 1
        total += r
        assert obs in env.observation_space
        if term or trunc:
            break
    # every env step was a decision the runtime recorded; the summed tradeoff reward is the task's
    assert info["decisions"] == steps
    assert total == pytest.approx(info["quality"] - lam * info["cost_usd"])  # λ per USD
    assert info["reason"] == "completed" and term and not trunc


def test_an_action_that_is_not_offered_falls_back_and_is_penalised(env: GraphRoutingEnv) -> None:
    env.reset(seed=0)
    mask = env.action_masks()
    bad = int(np.flatnonzero(~mask)[0])
    _, r, _, _, info = env.step(bad)
    assert info["invalid_action"] and info["chosen"] in {"small", "draft", "__end__"}
    assert r <= -env.invalid_action_penalty + 1e-12


def test_budget_exhaustion_is_truncation() -> None:
    e = GraphRoutingEnv(ab_graph(), tasks=TASKS, budget=ar.Budget(usd="0.01", steps=1), cost_scale_usd=0.001)
    e.reset(seed=0)
    term = trunc = False
    info: dict[str, object] = {}
    while not (term or trunc):
        _, _, term, trunc, info = e.step(int(np.flatnonzero(e.action_masks())[-1]))
    assert trunc and not term
    assert str(info["reason"]).startswith("budget")
    e.close()


def test_worker_errors_surface_in_step_and_the_env_recovers() -> None:
    before = set(_workers())
    e = GraphRoutingEnv(ab_graph(fail_in="review"), tasks=TASKS, cost_scale_usd=0.001)
    e.reset(seed=0)
    e.step(e.obs_spec.actions.index("small"))  # draft's tier
    with pytest.raises(ar.AgentError, match="review exploded"):
        e.step(e.obs_spec.actions.index("review"))
    e.reset()  # a fresh task runs
    _, _, term, _, _ = e.step(e.obs_spec.actions.index("small"))
    assert not term
    e.close()
    assert set(_workers()) <= before


def test_reset_in_mid_episode_and_close_leave_no_threads() -> None:
    before = set(_workers())
    e = GraphRoutingEnv(ab_graph(), tasks=TASKS, cost_scale_usd=0.001)
    for s in range(5):
        e.reset(seed=s)  # each abandons the task waiting at its first routing point
    assert len(set(_workers()) - before) == 1
    e.close()
    assert set(_workers()) <= before
    with pytest.raises(ar.ConfigError, match="reset"):
        e.step(0)


def test_boundary_reward_puts_difficulty_in_info_only() -> None:
    e = GraphRoutingEnv(ab_graph(), tasks=TASKS, reward="boundary", cost_weight=0.2)
    assert "difficulty" not in e.observation_space.spaces
    seen = set()
    for s in range(6):
        e.reset(seed=s)
        while True:
            _, r, term, trunc, info = e.step(int(np.flatnonzero(e.action_masks())[0]))
            if term or trunc:
                break
        assert np.isfinite(r)
        seen.add(info["difficulty"])
    assert seen <= {"easy", "hard", "unsolvable"} and seen
    e.close()


def test_vectorised_runs(env: GraphRoutingEnv) -> None:
    before = set(_workers())

    def make() -> GraphRoutingEnv:
        return GraphRoutingEnv(ab_graph(), tasks=TASKS, cost_weight=0.1, cost_scale_usd=0.001)

    vec = gym.vector.SyncVectorEnv([make, make], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = vec.reset(seed=0)
    assert obs["query"].shape[0] == 2
    for _ in range(6):
        obs, rew, _term, _trunc, _ = vec.step(np.array([3, 3]))  # "small" is offered wherever a tier is chosen
        assert rew.shape == (2,)
    vec.close()
    dvec = DummyVecEnv([make, make])
    dvec.reset()
    masks = np.stack(dvec.env_method("action_masks"))
    assert masks.shape == (2, len(env.obs_spec.actions)) and masks.any(axis=1).all()
    dvec.step(np.array([3, 3]))
    dvec.close()
    assert set(_workers()) <= before
