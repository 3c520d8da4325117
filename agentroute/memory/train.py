"""Fitting memory policies: PPO in :class:`~agentroute.envs.memory_tier.MemoryTierEnv`, rules and predictive baselines.

PPO runs on CPU through stable-baselines3 (imported here, lazily: serving a trained policy needs numpy only). The
trained actor is exported as plain arrays into an :class:`~agentroute.memory.policies.MLPPolicy`, so it is saved
without pickle (``.npz`` + JSON card) and evaluated without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory._memory import Memory
from agentroute.memory.evaluate import ComboTable, combo_table
from agentroute.memory.policies import MemoryRulePolicy, MLPPolicy, PredictivePolicy
from agentroute.policies.base import BasePolicy

POLICY_KINDS = ("ppo", "rule", "ridge", "knn")


def fit_ppo(
    memories: Sequence[Memory],
    *,
    cost_weight: float,
    reward: str = "budgetmem",
    timesteps: int = 40_000,
    seed: int = 0,
    mix: float = 0.5,
    budget_usd: float | tuple[float, float] | None = None,
    hidden: tuple[int, ...] = (64, 64),
    progress: bool = False,
) -> MLPPolicy:
    """Train PPO on the memories' questions and return its actor as a numpy :class:`MLPPolicy`."""
    import torch
    from stable_baselines3 import PPO

    from agentroute.envs.memory_tier import MemoryTierEnv

    if timesteps < 64:
        raise ConfigError(f"timesteps={timesteps} is too few for PPO", name="timesteps", hint="use at least 64")
    torch.set_num_threads(1)
    env = MemoryTierEnv(list(memories), reward=reward, cost_weight=cost_weight, mix=mix, budget_usd=budget_usd)
    n_steps = min(1024, max(64, timesteps // 8))
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        batch_size=min(256, n_steps),
        gamma=1.0,
        gae_lambda=0.95,
        learning_rate=1e-3,
        ent_coef=0.01,
        n_epochs=8,
        seed=seed,
        device="cpu",
        policy_kwargs={"net_arch": {"pi": list(hidden), "vf": list(hidden)}, "activation_fn": torch.nn.Tanh},
        verbose=0,
    )
    model.learn(total_timesteps=timesteps, progress_bar=progress)
    return export_actor(
        model,
        meta={
            "trained_with": "ppo",
            "reward": reward,
            "cost_weight": cost_weight,
            "mix": mix,
            "timesteps": timesteps,
            "seed": seed,
            "conversations": [m.conversation.id for m in memories],
            "answer_model": memories[0].config.answer_model,
            "call_model": memories[0].config.call_model,
        },
    )


def export_actor(model: Any, meta: dict[str, Any] | None = None) -> MLPPolicy:
    """The actor of an SB3 ``MlpPolicy`` (tanh layers, then the action head) as an :class:`MLPPolicy`."""
    import torch

    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for mod in model.policy.mlp_extractor.policy_net:
        if isinstance(mod, torch.nn.Linear):
            layers.append((mod.weight.detach().cpu().numpy(), mod.bias.detach().cpu().numpy()))
        elif not isinstance(mod, torch.nn.Tanh):
            raise ConfigError(f"cannot export a {type(mod).__name__} layer", name="activation_fn", hint="use Tanh")
    head = model.policy.action_net
    layers.append((head.weight.detach().cpu().numpy(), head.bias.detach().cpu().numpy()))
    return MLPPolicy(layers, meta=meta)


def fit_policy(
    kind: str,
    memories: Sequence[Memory],
    *,
    cost_weight: float,
    mix: float = 0.5,
    timesteps: int = 40_000,
    seed: int = 0,
    reward: str = "budgetmem",
    table: ComboTable | None = None,
    progress: bool = False,
) -> BasePolicy:
    """Fit a policy of ``kind`` (``ppo``, ``rule``, ``ridge`` or ``knn``) on ``memories``."""
    if kind not in POLICY_KINDS:
        raise ConfigError(f"cannot fit a {kind!r} policy", name=kind, hint=f"one of {', '.join(POLICY_KINDS)}")
    if kind == "ppo":
        return fit_ppo(
            memories, cost_weight=cost_weight, reward=reward, timesteps=timesteps, seed=seed, mix=mix,
            progress=progress,
        )
    unit = float(memories[0].usd(1000) or 1.0)
    tab = table if table is not None else combo_table(memories)
    if kind == "rule":
        return MemoryRulePolicy.fit(tab, cost_weight=cost_weight, unit_usd=unit, mix=mix)
    return PredictivePolicy.fit(tab, method=kind, cost_weight=cost_weight, unit_usd=unit, mix=mix)
