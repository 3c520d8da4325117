"""Boundary-guided training (after BoPO) in ``agentroute/GraphRouting-v0``.

For every training task, two **boundary rollouts** (always-cheapest and always-strongest: what the environment's
:meth:`~agentroute.envs.graph_routing.GraphRoutingEnv.boundary` runs) place it in a **difficulty class**
(:func:`agentroute.envs.rewards.difficulty`: ``easy`` when the cheapest rollout succeeds, ``hard`` when only the
strongest does, ``unsolvable`` otherwise). A few exploring rollouts (uniformly random policies) run beside them;
the **warm start** clones, per task, the cheapest trajectory whose quality reaches the strongest's (within
``tolerance``; the cheapest rollout on an unsolvable task, where spending buys nothing), by maximising the
actor's log-probability of its actions under the action masks. PPO (or MaskablePPO) then trains on the
**boundary-relative reward** (:class:`~agentroute.envs.rewards.BoundaryReward`: quality gained between the two
boundaries, cost as a position between their costs, a penalty for failing a task only the strongest solves).

Rollouts for the boundaries and the warm start are environment episodes that PPO's ``total_timesteps`` does not
count; :func:`fit_bopo` reports them. λ of the boundary reward has no unit: :func:`boundary_cost_weight` converts a
λ per USD with the mean cost span between the boundaries. Training code: it imports torch and stable-baselines3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.envs.rewards import Boundary, difficulty
from agentroute.errors import ConfigError


@dataclass
class Trajectory:
    """One episode: the encoded observations, masks and actions, and what the task got and spent (USD)."""

    obs: list[dict[str, np.ndarray]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    quality: float = 0.0
    cost_usd: float = 0.0
    source: str = ""


def rollout(env: Any, task_index: int, policy: Any, *, cost_weight: float = 0.0) -> Trajectory:
    """Run task ``task_index`` of a ``GraphRoutingEnv`` with ``policy`` deciding at every routing point."""
    obs, _ = env.reset(options={"task_index": task_index, "cost_weight": cost_weight})
    traj = Trajectory(source=str(getattr(policy, "name", type(policy).__name__)))
    actions = list(env.obs_spec.actions)
    while True:
        point = env.observation
        if point is None:  # pragma: no cover - reset always stops at a routing point
            return traj
        chosen = policy.decide(point).chosen
        a = actions.index(chosen)
        traj.obs.append({k: v.copy() for k, v in obs.items()})
        traj.masks.append(env.action_masks())
        traj.actions.append(a)
        obs, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            traj.quality, traj.cost_usd = float(info.get("quality", 0.0)), float(info.get("cost_usd", 0.0))
            return traj


@dataclass
class TaskBoundary:
    """A training task's boundaries, class and the trajectory the warm start clones."""

    index: int
    boundary: Boundary
    cls: str
    target: Trajectory


def boundary_rollouts(env: Any, tasks: Sequence[int], *, explore: int = 4, tolerance: float = 0.05,
                      success: float = 0.5, seed: int = 0) -> list[TaskBoundary]:
    """Boundary rollouts, difficulty classes and the cloned trajectory of each task (module docstring)."""
    from agentroute.policies import Cheapest, Random, Strongest

    out = []
    for i in tasks:
        lo = rollout(env, i, Cheapest())
        hi = rollout(env, i, Strongest())
        b = Boundary(lo.quality, lo.cost_usd, hi.quality, hi.cost_usd)
        cls = difficulty(b, success)
        pool = [lo, hi, *(rollout(env, i, Random(seed=seed * 1000 + 17 * i + k)) for k in range(explore))]
        reach = [t for t in pool if t.quality >= hi.quality - tolerance]
        target = lo if cls == "unsolvable" or not reach else min(reach, key=lambda t: (t.cost_usd, -t.quality))
        out.append(TaskBoundary(i, b, cls, target))
    return out


def boundary_cost_weight(bounds: Sequence[TaskBoundary], cost_weight_usd: float, *, min_gap: float = 0.1) -> float:
    """The boundary reward's λ (no unit) that prices a USD like ``cost_weight_usd`` does on these tasks.

    Per task the boundary reward is the trade-off reward ``q − λ·c`` divided by the quality span ``Δq`` when its λ is
    ``λ·Δc/Δq`` (``Δc`` the cost span); this is that ratio's mean over the tasks (``Δq`` at least ``min_gap``).
    """
    ratios = [max(0.0, t.boundary.c_hi - t.boundary.c_lo) / max(abs(t.boundary.q_hi - t.boundary.q_lo), min_gap)
              for t in bounds]
    return float(cost_weight_usd * (np.mean(ratios) if ratios else 0.0))


def clone(model: Any, trajectories: Sequence[Trajectory], *, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
          seed: int = 0) -> float:
    """Behaviour-clone the actor on ``trajectories`` (masked log-likelihood); return the last epoch's accuracy."""
    import torch

    from agentroute.policies._sb3 import one_thread

    obs = [o for t in trajectories for o in t.obs]
    if not obs:
        raise ConfigError("nothing to clone: no trajectory reached a routing point", name="trajectories")
    keys = list(obs[0])
    batch_obs = {k: np.stack([o[k] for o in obs]) for k in keys}
    masks = np.stack([m for t in trajectories for m in t.masks])
    acts = np.asarray([a for t in trajectories for a in t.actions], dtype=np.int64)
    pol = model.policy
    maskable = "MaskablePPO" in type(model).__name__
    opt = torch.optim.Adam(pol.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    n, acc = len(acts), 0.0
    with one_thread():
        for _ in range(epochs):
            order = rng.permutation(n)
            hits = 0
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                obs_t, _ = pol.obs_to_tensor({k: v[idx] for k, v in batch_obs.items()})
                act_t = torch.as_tensor(acts[idx])
                extra = {"action_masks": masks[idx]} if maskable else {}
                dist = pol.get_distribution(obs_t, **extra)
                loss = -dist.log_prob(act_t).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    hits += int((dist.distribution.probs.argmax(dim=1) == act_t).sum())
            acc = hits / n
    return acc


def fit_bopo(env_kwargs: dict[str, Any], *, cost_weight_usd: float, algo: str = "maskable_ppo",
             total_timesteps: int = 4096, seed: int = 0, explore: int = 4, tolerance: float = 0.05,
             clone_epochs: int = 30, out: str | Path | None = None, tasks: Sequence[int] | None = None,
             bounds: Sequence[TaskBoundary] | None = None) -> Any:
    """Boundary rollouts, a cloned warm start, then PPO on the boundary reward; returns the exported policy.

    ``env_kwargs`` build the ``GraphRoutingEnv`` (graph, tasks, budget, ...; no reward or λ: set here). The card's
    ``bopo`` entry holds the classes, the clone's accuracy, λ of the boundary reward and the rollouts it took.
    ``bounds`` reuses the rollouts of :func:`boundary_rollouts` (they do not depend on λ); ``total_timesteps=0``
    returns the cloned warm start alone.
    """
    from agentroute.envs.graph_routing import GraphRoutingEnv
    from agentroute.policies._sb3 import GRAPH_PPO, export_model, make_vec, train_model

    kw = {k: v for k, v in env_kwargs.items() if k not in ("reward", "reward_kwargs", "cost_weight",
                                                              "cost_weight_range")}
    if bounds is None:
        probe = GraphRoutingEnv(**kw)
        try:
            idx = list(range(len(probe.tasks))) if tasks is None else list(tasks)
            bounds = boundary_rollouts(probe, idx, explore=explore, tolerance=tolerance, seed=seed)
        finally:
            probe.close()
    lam_b = boundary_cost_weight(bounds, cost_weight_usd)
    env = GraphRoutingEnv(**kw, reward="boundary", cost_weight=lam_b)
    for b in bounds:  # the boundary reward reads the same rollouts: no second run of them
        env.set_boundary(b.index, b.boundary.q_lo, b.boundary.c_lo, b.boundary.q_hi, b.boundary.c_hi)
    vec = make_vec([lambda: env], seed=seed)
    try:
        model = train_model(vec, algo=algo, total_timesteps=total_timesteps, seed=seed, hyper=GRAPH_PPO, learn=False)
        accuracy = clone(model, [b.target for b in bounds], epochs=clone_epochs, seed=seed)
        if total_timesteps > 0:
            from agentroute.policies._sb3 import one_thread

            with one_thread():
                model.learn(total_timesteps=total_timesteps)
        classes = {c: sum(b.cls == c for b in bounds) for c in ("easy", "hard", "unsolvable")}
        card: dict[str, Any] = dict(env.describe())
        card.update(algo=algo, seed=seed, total_timesteps=int(total_timesteps),
                    hyperparameters={**GRAPH_PPO, "n_envs": 1, "net_arch": [64, 64]},
                    obs={"kind": "graph", "spec": env.obs_spec.to_dict()}, featurizer=env.featurizer.to_dict(),
                    bopo={"classes": classes, "clone_accuracy": accuracy, "boundary_cost_weight": lam_b,
                          "cost_weight_usd": cost_weight_usd, "explore": explore, "tolerance": tolerance,
                          "rollouts": len(bounds) * (2 + explore),
                          "cloned_cost_usd": float(np.mean([b.target.cost_usd for b in bounds])),
                          "cloned_quality": float(np.mean([b.target.quality for b in bounds]))})
        sample, _ = env.reset(seed=seed)
        policy = export_model(model, card, check={k: np.asarray(v)[None] for k, v in sample.items()})
    finally:
        vec.close()
    if out is not None:
        policy.save(out)
    return policy


__all__ = ["TaskBoundary", "Trajectory", "boundary_cost_weight", "boundary_rollouts", "clone", "fit_bopo", "rollout"]
