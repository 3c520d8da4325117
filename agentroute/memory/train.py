"""Fitting memory policies: PPO in :class:`~agentroute.envs.memory_tier.MemoryTierEnv`, rules and predictive baselines.

PPO runs on CPU through stable-baselines3 (imported here, lazily: serving a trained policy needs numpy only). The
trained actor is exported as plain arrays into an :class:`~agentroute.memory.policies.MLPPolicy`, so it is saved
without pickle (``.npz`` + JSON card) and evaluated without torch.

``fit_ppo(..., warm_start=True)`` first clones a fitted-Q teacher (:class:`~agentroute.memory.fitted.FittedQPolicy`,
fitted on the same questions at the same cost weight) into the actor: its choice at every prefix state of every
training question, by cross-entropy. PPO then starts where the teacher is instead of from a uniform policy, which on
these few thousand episodes it otherwise never catches up with.
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
    warm_start: bool | Any = False,
    clone_epochs: int = 15,
) -> MLPPolicy:
    """Train PPO on the memories' questions and return its actor as a numpy :class:`MLPPolicy`.

    ``warm_start``: ``True`` clones a fitted-Q teacher fitted here on the same questions (same cost weight and mix)
    into the actor before PPO runs; a :class:`~agentroute.memory.fitted.FittedQPolicy` is used as the teacher as
    it is. ``timesteps=0`` with a warm start returns the cloned actor alone.
    """
    import torch
    from stable_baselines3 import PPO

    from agentroute.envs.memory_tier import MemoryTierEnv

    if timesteps < 64 and not (warm_start is not False and timesteps == 0):
        raise ConfigError(f"timesteps={timesteps} is too few for PPO", name="timesteps",
                          hint="use at least 64 (or 0 with a warm start: the cloned teacher alone)")
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
        # From a cloned teacher PPO fine-tunes: smaller steps and no entropy bonus, so it does not unlearn it.
        learning_rate=3e-4 if warm_start is not False else 1e-3,
        ent_coef=0.0 if warm_start is not False else 0.01,
        n_epochs=4 if warm_start is not False else 8,
        seed=seed,
        device="cpu",
        policy_kwargs={"net_arch": {"pi": list(hidden), "vf": list(hidden)}, "activation_fn": torch.nn.Tanh},
        verbose=0,
    )
    warm: dict[str, Any] = {}
    if warm_start is not False:
        warm = clone_teacher(model, memories, warm_start, cost_weight=cost_weight, mix=mix, epochs=clone_epochs,
                             seed=seed)
    if timesteps > 0:
        model.learn(total_timesteps=timesteps, progress_bar=progress)
    return export_actor(
        model,
        meta={
            **({"warm_start": warm} if warm else {}),
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


def clone_teacher(
    model: Any,
    memories: Sequence[Memory],
    teacher: bool | Any,
    *,
    cost_weight: float,
    mix: float,
    epochs: int = 15,
    seed: int = 0,
) -> dict[str, Any]:
    """Teach the PPO actor a fitted-Q teacher's choice at every prefix state of the memories' questions.

    Returns what goes on the card: the teacher, its shrinkage, and the share of states where the actor's most likely
    tier is the teacher's after cloning.
    """
    import torch

    from agentroute.memory.fitted import FittedQPolicy, collect
    from agentroute.policies._sb3 import one_thread

    data = collect(memories)
    if teacher is True:
        teacher = FittedQPolicy.fit(data, cost_weight=cost_weight, mix=mix)
    if not isinstance(teacher, FittedQPolicy):
        raise ConfigError(f"cannot warm-start PPO from {teacher!r}", name="warm_start",
                          hint="pass True (fit a fitted-q teacher here) or a FittedQPolicy")
    x_t = torch.as_tensor(np.concatenate(data.features))
    y_t = torch.as_tensor(np.concatenate([c.ravel() for c in teacher.state_choices(data)]))
    pol = model.policy
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    with one_thread():
        for _ in range(epochs):
            perm = torch.randperm(len(x_t), generator=gen)
            for i in range(0, len(x_t), 512):
                idx = perm[i : i + 512]
                loss = -pol.get_distribution(x_t[idx]).log_prob(y_t[idx]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            agree = float((pol.get_distribution(x_t).distribution.probs.argmax(dim=1) == y_t).float().mean())
    return {"teacher": "fitted-q", "teacher_alpha": teacher.alpha, "states": len(x_t), "epochs": epochs,
            "imitation_accuracy": agree}


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
    warm_start: bool = False,
) -> BasePolicy:
    """Fit a policy of ``kind`` (``ppo``, ``rule``, ``ridge`` or ``knn``) on ``memories``."""
    if kind not in POLICY_KINDS:
        raise ConfigError(f"cannot fit a {kind!r} policy", name=kind, hint=f"one of {', '.join(POLICY_KINDS)}")
    if kind == "ppo":
        return fit_ppo(
            memories, cost_weight=cost_weight, reward=reward, timesteps=timesteps, seed=seed, mix=mix,
            progress=progress, warm_start=warm_start,
        )
    unit = float(memories[0].usd(1000) or 1.0)
    tab = table if table is not None else combo_table(memories)
    if kind == "rule":
        return MemoryRulePolicy.fit(tab, cost_weight=cost_weight, unit_usd=unit, mix=mix)
    return PredictivePolicy.fit(tab, method=kind, cost_weight=cost_weight, unit_usd=unit, mix=mix)
