"""Training routing policies in the environments: PPO on routing tables, on graphs, and on memory tiers.

The drivers of training (the layer of the environments and the command line): each loop builds a Gymnasium
environment, trains with stable-baselines3 (:mod:`agentroute.policies._sb3` holds the models and the export), and
returns an ordinary policy that serves with numpy alone. Policies never import this module.

λ is per USD in the arguments of :func:`fit_ppo_from_table` and the memory loops. The environments take λ in cost
units of their table (``cost_scale`` USD: the mean cost of its priciest option; for memory, 1,000 context tokens of
the answering model); the conversion is made in one place, :func:`_env_lambda`. :func:`fit_query_policy` and
:func:`fit_env_policy` pass λ to the environment as given (the environment's units, as scenarios state it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.envs.query_routing import QueryRoutingEnv, resolve_table, table_features
from agentroute.envs.rewards import auto_cost_weight_range, cost_scale
from agentroute.errors import ConfigError
from agentroute.policies._sb3 import (
    GRAPH_PPO,
    QUERY_PPO,
    WARM_LR,
    behaviour_clone,
    export_model,
    make_vec,
    one_thread,
    progress_callback,
    quiet_logger,
    train_model,
    warm_start_targets,
)
from agentroute.policies.learned import LearnedPolicy


def _const(env: Any) -> Any:
    return lambda: env


def _env_lambda(lam_usd: float, unit_usd: float) -> float:
    """λ per USD as the environments take it: per cost unit of ``unit_usd`` USD."""
    return lam_usd * unit_usd


def fit_ppo_from_table(
    table: Any,
    featurizer: Any = None,
    *,
    seed: int = 0,
    cost_weights: float | Sequence[float] | str | None = "auto",
    out: str | Path | None = None,
    total_timesteps: int = 100_000,
    algo: str = "ppo",
    reward: str = "tradeoff",
    progress: bool = False,
) -> LearnedPolicy:
    """Train PPO (or ``maskable_ppo``) on ``agentroute/QueryRouting-v0`` over ``table``; export, save to ``out``.

    ``featurizer`` is fitted on the table when it is not yet fitted (default: hashed n-grams projected to 64
    dimensions). ``cost_weights`` is a fixed λ per USD, an ``(a, b)`` range per USD observed by the policy, or
    ``"auto"``: from 0 to 3 times the steepest slope of the single options' cost–quality hull
    (:func:`agentroute.envs.rewards.auto_cost_weight_range`), so the range covers every price at which the best
    option changes.
    """
    if isinstance(cost_weights, int | float) or (cost_weights is not None and not isinstance(cost_weights, str)):
        tbl = resolve_table(table, None)
        table, scale = tbl, cost_scale(tbl.cost)
        if isinstance(cost_weights, int | float):
            cost_weights = _env_lambda(float(cost_weights), scale)
        else:
            cost_weights = tuple(_env_lambda(float(v), scale) for v in cost_weights)
    return fit_query_policy(
        table,
        featurizer,
        seed=seed,
        cost_weights=cost_weights,
        out=out,
        total_timesteps=total_timesteps,
        algo=algo,
        reward=reward,
        progress=progress,
    )


def query_metrics(policy: LearnedPolicy, env: Any, lambdas: Sequence[float]) -> dict[str, Any]:
    """Mean quality and USD cost of ``policy`` on every query of ``env``'s table at each λ (per USD), and per option."""
    x = env._x[:, : env.feature_dim]
    q, c = env.table.quality, env.table.cost
    rows = np.arange(len(env.table))
    sweep = []
    for lam in lambdas:  # per USD
        choice, _ = policy.predict(x, lam)
        sweep.append(
            {
                "cost_weight": float(lam),
                "quality": float(q[rows, choice].mean()),
                "cost_usd": float(c[rows, choice].mean()),
                "share": {o: float(np.mean(choice == j)) for j, o in enumerate(env.options)},
            }
        )
    single = {
        o: {"quality": float(q[:, j].mean()), "cost_usd": float(c[:, j].mean())} for j, o in enumerate(env.options)
    }
    return {"split": "train", "queries": len(rows), "sweep": sweep, "options": single}


def fit_query_policy(
    table: Any,
    featurizer: Any = None,
    *,
    seed: int = 0,
    cost_weights: float | Sequence[float] | str | None = "auto",
    out: str | Path | None = None,
    total_timesteps: int = 100_000,
    algo: str = "ppo",
    reward: str = "tradeoff",
    n_envs: int = 8,
    net_arch: Sequence[int] = (64, 64),
    progress: bool | None = False,
    callbacks: Sequence[Any] = (),
    sampling: str = "square",
    baseline: str = "none",
    warm_start: Any = None,
) -> LearnedPolicy:
    """:func:`fit_ppo_from_table` with λ as ``agentroute/QueryRouting-v0`` takes it: per cost unit of the table.

    ``cost_weights``: a fixed λ, an ``(a, b)`` range, or ``"auto"``, in cost units (``cost_scale`` USD; the
    environment's own unit, as ``agentroute train`` scenarios give it). The exported policy serves λ per USD.
    """
    tbl = resolve_table(table, None)
    features, featurizer = table_features(tbl, featurizer)
    scale = cost_scale(tbl.cost)
    if cost_weights == "auto":
        cost_weights = auto_cost_weight_range(tbl.quality, tbl.cost)
    env_kw: dict[str, Any] = {"features": features, "featurizer": featurizer, "reward": reward}
    if reward == "tradeoff" and baseline != "none":
        env_kw["baseline"] = baseline
    if cost_weights is None or isinstance(cost_weights, int | float):
        env_kw["cost_weight"] = 0.1 if cost_weights is None else float(cost_weights)
    else:
        env_kw["cost_weight_range"] = tuple(float(v) for v in cost_weights)
        env_kw["cost_weight_sampling"] = sampling
    env_kw["cost_unit"] = "scale"  # λ in the table's cost units, as this loop gives it
    vec = make_vec([lambda: QueryRoutingEnv(tbl, **env_kw)] * n_envs, seed=seed)
    cbs = list(callbacks)
    if progress is not False:
        cbs.append(progress_callback(total_timesteps, enabled=progress))
    probe = vec.envs[0]
    hyper = dict(QUERY_PPO)
    warm: dict[str, Any] | None = None
    if warm_start is not None:
        qh, ch = warm_start_targets(warm_start, tbl)
        model = train_model(vec, algo=algo, total_timesteps=total_timesteps, seed=seed, net_arch=net_arch,
                            hyper=hyper, learn=False)
        acc = behaviour_clone(model, probe._x[:, : probe.feature_dim], qh, ch,
                              cost_weight_range=probe.cost_weight_range,
                              observe_cost_weight=probe.observe_cost_weight, seed=seed)
        warm = {"from": warm_start if isinstance(warm_start, str) else getattr(warm_start, "name", "router"),
                "imitation_accuracy": acc}
        model.learning_rate = WARM_LR  # fine-tune gently: the imitation is already a good policy
        model.lr_schedule = lambda _: WARM_LR
        if total_timesteps > 0:
            with one_thread():
                model.learn(total_timesteps=total_timesteps, callback=cbs or None)
    else:
        model = train_model(
            vec, algo=algo, total_timesteps=total_timesteps, seed=seed, net_arch=net_arch, hyper=hyper, callbacks=cbs
        )
    card = {
        **probe.describe(),
        "algo": algo,
        "seed": seed,
        "total_timesteps": int(total_timesteps),
        "hyperparameters": {**QUERY_PPO, "n_envs": n_envs, "net_arch": list(net_arch)},
        "warm_start": warm,
        "obs": {"kind": "query"},
        "featurizer": featurizer.to_dict(),
    }
    sample = probe._x[: min(64, len(tbl))].copy()
    if probe.observe_cost_weight:
        lo, hi = probe.cost_weight_range
        sample[:, -1] = np.linspace(float(lo), float(hi), num=len(sample))
    policy = export_model(model, card, check=sample)
    lo, hi = probe.cost_weight_range
    policy.card["metrics"] = query_metrics(policy, probe, sorted({v / scale for v in (lo, (lo + hi) / 2, hi)}))
    vec.close()
    if out is not None:
        policy.save(out)
    return policy


def fit_env_policy(
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    algo: str = "ppo",
    total_timesteps: int = 10_000,
    seed: int = 0,
    out: str | Path | None = None,
    n_envs: int = 1,
    net_arch: Sequence[int] = (64, 64),
    progress: bool | None = False,
    callbacks: Sequence[Any] = (),
) -> LearnedPolicy:
    """Train on any registered agentroute environment (``gym.make(env_id, **env_kwargs)``) and export the actor.

    The card's ``obs`` says how a served policy rebuilds observations: ``graph`` for GraphRouting (the env's
    :class:`~agentroute.policies._graph_obs.GraphObsSpec`), ``raw`` otherwise (the network is exported, and serves
    through :meth:`LearnedPolicy.logits` on observations you build).
    """
    import gymnasium as gym

    import agentroute.envs  # noqa: F401 - registers the ids

    kw = dict(env_kwargs or {})
    envs = [gym.make(env_id, **kw) for _ in range(max(1, n_envs))]
    vec = make_vec([_const(e) for e in envs], seed=seed)
    cbs = list(callbacks)
    if progress is not False:
        cbs.append(progress_callback(total_timesteps, enabled=progress))
    try:
        model = train_model(
            vec, algo=algo, total_timesteps=total_timesteps, seed=seed, net_arch=net_arch, hyper=GRAPH_PPO,
            callbacks=cbs,
        )
        probe = envs[0].unwrapped
        describe = getattr(probe, "describe", None)
        card: dict[str, Any] = dict(describe()) if callable(describe) else {"env": env_id}
        card.update(algo=algo, seed=seed, total_timesteps=int(total_timesteps),
                    hyperparameters={**GRAPH_PPO, "n_envs": n_envs, "net_arch": list(net_arch)})
        obs_spec = getattr(probe, "obs_spec", None)
        if obs_spec is not None:
            card["obs"] = {"kind": "graph", "spec": obs_spec.to_dict()}
        else:
            card["obs"] = {"kind": "raw"}
            card.setdefault("options", [str(i) for i in range(int(getattr(probe.action_space, "n", 0)))])
        featurizer = getattr(probe, "featurizer", None)
        if featurizer is not None and hasattr(featurizer, "to_dict"):
            card["featurizer"] = featurizer.to_dict()
        sample, _ = probe.reset(seed=seed)
        batch: Any = (
            {k: np.asarray(v)[None] for k, v in sample.items()}
            if isinstance(sample, dict)
            else np.asarray(sample)[None]
        )
        policy = export_model(model, card, check=batch)
    finally:
        vec.close()
    if out is not None:
        policy.save(out)
    return policy


# ---------------------------------------------------------------------- memory tiers


def fit_memory_ppo(
    memories: Sequence[Any],
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
) -> Any:
    """Train PPO on the memories' questions and return its actor as a numpy :class:`MLPPolicy`.

    ``cost_weight`` is λ per USD (the environment takes it per 1,000 context tokens of the answering model).

    ``warm_start``: ``True`` clones a fitted-Q teacher fitted here on the same questions (same cost weight and mix)
    into the actor before PPO runs; a :class:`~agentroute.memory.fitted.FittedQPolicy` is used as the teacher as
    it is. ``timesteps=0`` with a warm start returns the cloned actor alone.
    """
    import torch
    from stable_baselines3 import PPO

    from agentroute.envs.memory_tier import MemoryTierEnv
    from agentroute.memory.train import clone_teacher, export_actor, unit_usd

    if timesteps < 64 and not (warm_start is not False and timesteps == 0):
        raise ConfigError(f"timesteps={timesteps} is too few for PPO", name="timesteps",
                          hint="use at least 64 (or 0 with a warm start: the cloned teacher alone)")
    torch.set_num_threads(1)
    env = MemoryTierEnv(list(memories), reward=reward, cost_unit="scale",
                        cost_weight=_env_lambda(cost_weight, unit_usd(memories)),
                        mix=mix, budget_usd=budget_usd)
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
    quiet_logger(model)
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
            "cost_unit": "usd",
            "mix": mix,
            "timesteps": timesteps,
            "seed": seed,
            "conversations": [m.conversation.id for m in memories],
            "answer_model": memories[0].config.answer_model,
            "call_model": memories[0].config.call_model,
        },
    )


def fit_memory_policy(
    kind: str,
    memories: Sequence[Any],
    *,
    cost_weight: float,
    mix: float = 0.5,
    timesteps: int = 40_000,
    seed: int = 0,
    reward: str = "budgetmem",
    table: Any = None,
    progress: bool = False,
    warm_start: bool = False,
) -> Any:
    """Fit a memory policy of ``kind`` (``ppo``, ``rule``, ``ridge`` or ``knn``) on ``memories``; λ per USD."""
    from agentroute.memory.train import POLICY_KINDS, fit_baseline

    if kind not in POLICY_KINDS:
        raise ConfigError(f"cannot fit a {kind!r} policy", name=kind, hint=f"one of {', '.join(POLICY_KINDS)}")
    if kind == "ppo":
        return fit_memory_ppo(
            memories, cost_weight=cost_weight, reward=reward, timesteps=timesteps, seed=seed, mix=mix,
            progress=progress, warm_start=warm_start,
        )
    return fit_baseline(kind, memories, cost_weight=cost_weight, mix=mix, table=table)


__all__ = [
    "fit_env_policy",
    "fit_memory_policy",
    "fit_memory_ppo",
    "fit_ppo_from_table",
    "fit_query_policy",
    "query_metrics",
]
