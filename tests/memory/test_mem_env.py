import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from mem_helpers import memory
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agentroute.envs.memory_tier import MemoryTierEnv
from agentroute.errors import ConfigError
from agentroute.memory import MODULE_NAMES
from agentroute.memory.features import N_FEATURES

MEMS = [memory("a"), memory("b")]


@pytest.mark.parametrize("reward", ["budgetmem", "tradeoff"])
def test_passes_both_checkers(reward):
    env = MemoryTierEnv(MEMS, reward=reward, budget_usd=(0.01, 0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
        sb3_check_env(env)
    assert env.observation_space.shape == (N_FEATURES,)


def test_registered_id_makes_the_env():
    import agentroute.envs  # noqa: F401 - registers the ids

    env = gym.make("agentroute/MemoryTier-v0", conversations=MEMS, disable_env_checker=True)
    obs, info = env.reset(seed=0)
    assert obs.shape == (N_FEATURES,) and "question" in info


def test_episode_is_one_question_one_step_per_module():
    env = MemoryTierEnv(MEMS, reward="tradeoff", cost_weight=0.5)
    obs, info = env.reset(seed=3)
    total, steps = 0.0, 0
    while True:
        obs, r, term, trunc, info = env.step(2)
        total += r
        steps += 1
        assert env.observation_space.contains(obs)
        if term or trunc:
            break
    assert steps == len(MODULE_NAMES) and term and not trunc
    assert total == pytest.approx(info["quality"] - 0.5 * info["cost_units"], abs=1e-9)
    assert info["tiers"] == {m: "high" for m in MODULE_NAMES}
    with pytest.raises(ConfigError):
        env.step(0)


def test_budget_masks_and_truncates():
    env = MemoryTierEnv(MEMS, reward="tradeoff", budget_usd=0.0)
    env.reset(seed=0)
    assert not env.action_masks().any()
    _, _, term, trunc, info = env.step(0)
    assert trunc and not term and info["quality"] == 0.0
    tight = MemoryTierEnv(MEMS, reward="tradeoff", budget_usd=0.0008)
    tight.reset(seed=1)
    mask = tight.action_masks()
    assert mask[0] and not mask.all()
    _, _, _, _, info = tight.step(2)  # unaffordable: downgraded to the strongest affordable tier
    assert info["downgraded"] and info["tier"] != "high"


def test_budgetmem_reward_aligns_scales():
    env = MemoryTierEnv(MEMS, reward="budgetmem", cost_weight=1.0, window=50)
    rng = np.random.default_rng(0)
    rewards, alphas = [], []
    for ep in range(40):
        env.reset(seed=ep)
        done = False
        while not done:
            _, r, term, trunc, info = env.step(int(rng.integers(3)))
            done = term or trunc
        rewards.append(r)
        alphas.append(info["alpha"])
        assert 0.0 <= info["r_cost"] <= 1.0
        assert r == pytest.approx(info["quality"] + info["alpha"] * info["r_cost"])
    assert alphas[0] == 1.0 and len(set(np.round(alphas[15:], 6))) > 1
    # the env scores with the one BudgetMem reward: a free outcome is fully efficient, a very dear one not at all
    assert env._budgetmem.window == 50
    cheap = 1.0 - env._budgetmem.normalised_cost(0.0)
    dear = 1.0 - env._budgetmem.normalised_cost(10.0**6)
    assert cheap == 1.0 and dear == 0.0


def test_rejects_bad_settings():
    with pytest.raises(ConfigError):
        MemoryTierEnv(MEMS, reward="dollars")
    with pytest.raises(ConfigError):
        MemoryTierEnv(MEMS, mix=2.0)
