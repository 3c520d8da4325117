"""Fitting memory tier policies without an environment: rules and predictive baselines, and the PPO actor's export.

The PPO loop itself drives :class:`~agentroute.envs.memory_tier.MemoryTierEnv`, so it lives with the other training
loops in :mod:`agentroute.training` (:func:`agentroute.training.fit_memory_ppo`); what it needs that is not the
environment is here: :func:`clone_teacher` (a fitted-Q teacher's choices cloned into the actor before PPO) and
:func:`export_actor` (the actor as a numpy :class:`~agentroute.memory.policies.MLPPolicy`, saved without pickle and
served without torch). λ (``cost_weight``) is per USD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory._memory import Memory
from agentroute.memory.evaluate import ComboTable, combo_table
from agentroute.memory.policies import MemoryPolicy, MemoryRulePolicy, MLPPolicy, PredictivePolicy

POLICY_KINDS = ("ppo", "rule", "ridge", "knn")
BASELINE_KINDS = ("rule", "ridge", "knn")


def unit_usd(memories: Sequence[Memory]) -> float:
    """USD of 1,000 context tokens of the memories' answering model (the cost unit of the memory environment)."""
    return float(memories[0].usd(1000) or 1.0)


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
    return MLPPolicy(layers, meta=meta, layout="out_in")


def fit_baseline(
    kind: str,
    memories: Sequence[Memory],
    *,
    cost_weight: float,
    mix: float = 0.5,
    table: ComboTable | None = None,
) -> MemoryPolicy:
    """Fit a ``rule``, ``ridge`` or ``knn`` policy on ``memories`` at λ = ``cost_weight`` per USD."""
    if kind not in BASELINE_KINDS:
        raise ConfigError(f"cannot fit a {kind!r} policy here", name=kind, hint=f"one of {', '.join(BASELINE_KINDS)}")
    tab = table if table is not None else combo_table(memories)
    if kind == "rule":
        return MemoryRulePolicy.fit(tab, cost_weight=cost_weight, mix=mix)
    return PredictivePolicy.fit(tab, method=kind, cost_weight=cost_weight, unit_usd=unit_usd(memories), mix=mix)


__all__ = ["BASELINE_KINDS", "POLICY_KINDS", "clone_teacher", "export_actor", "fit_baseline", "unit_usd"]
