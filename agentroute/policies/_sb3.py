"""Training with stable-baselines3 (PPO, MaskablePPO) and export of the actor to a :class:`LearnedPolicy`.

This is the only module that imports torch and stable-baselines3, and only inside its functions; nothing imports it
at serving time. Export reads the actor's linear layers (``mlp_extractor.policy_net`` then ``action_net``) into
float32 arrays and checks, on sample observations, that the numpy network reproduces torch's logits.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies.learned import FORMAT, LearnedPolicy

ALGOS = ("ppo", "maskable_ppo")

# PPO settings for one-decision episodes (a contextual bandit): short rollouts over many envs, no discounting.
QUERY_PPO: dict[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 1e-3,
    "gamma": 0.0,
    "gae_lambda": 1.0,
    "ent_coef": 0.003,
}
WARM_LR = 1e-4
"""Learning rate of PPO after a warm start."""
GRAPH_PPO: dict[str, Any] = {"n_steps": 128, "batch_size": 128, "n_epochs": 10, "learning_rate": 3e-4, "gamma": 1.0}


def progress_callback(total: int, *, enabled: bool | None = None, desc: str = "training") -> Any:
    """A tqdm progress bar over environment steps, shown only on a terminal unless ``enabled`` says otherwise."""
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled

    class _Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=desc, unit="step", disable=not show, dynamic_ncols=True)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return _Progress()


def make_vec(env_fns: Sequence[Callable[[], Any]], *, seed: int) -> Any:
    """A ``DummyVecEnv`` (in-process; the routing envs are far cheaper than a process hop) seeded with ``seed``."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv(list(env_fns))
    vec.seed(seed)
    return vec


def train_model(
    vec: Any,
    *,
    algo: str = "ppo",
    total_timesteps: int = 50_000,
    seed: int = 0,
    net_arch: Sequence[int] = (64, 64),
    hyper: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
    learn: bool = True,
) -> Any:
    """Train ``algo`` on the vectorised env ``vec``; return the stable-baselines3 model (untrained if not ``learn``)."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}", name=algo, hint=f"use one of {', '.join(ALGOS)}")
    if total_timesteps < (1 if learn else 0):
        raise ConfigError(f"total_timesteps={total_timesteps} must be >= 1", name="total_timesteps")
    kw = dict(hyper or {})
    n_envs = int(vec.num_envs)
    kw.setdefault("n_steps", 128)
    kw["n_steps"] = max(2, min(int(kw["n_steps"]), max(2, total_timesteps // n_envs))) if total_timesteps else 128
    kw["batch_size"] = max(2, min(int(kw.get("batch_size", 64)), kw["n_steps"] * n_envs))
    arch = list(net_arch)
    policy_kwargs = {"net_arch": {"pi": arch, "vf": arch}}
    policy = "MultiInputPolicy" if _is_dict(vec.observation_space) else "MlpPolicy"
    if algo == "ppo":
        from stable_baselines3 import PPO

        model: Any = PPO(policy, vec, seed=seed, policy_kwargs=policy_kwargs, verbose=0, device="cpu", **kw)
    else:
        from sb3_contrib import MaskablePPO

        model = MaskablePPO(policy, vec, seed=seed, policy_kwargs=policy_kwargs, verbose=0, device="cpu", **kw)
    if learn:
        with one_thread():
            model.learn(total_timesteps=total_timesteps, callback=list(callbacks) or None)
    return model


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread for the duration: these networks are tiny, and extra threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _is_dict(space: Any) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Dict)


def export_model(
    model: Any, card: dict[str, Any], *, check: np.ndarray | dict[str, np.ndarray] | None = None
) -> LearnedPolicy:
    """The actor of a trained model as a numpy :class:`LearnedPolicy`; ``check`` holds sample observations.

    Raises :class:`ConfigError` for architectures that cannot be exported (non-flat features, unknown activations).
    """
    import torch
    from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor
    from torch import nn

    pol = model.policy
    fe = pol.pi_features_extractor if hasattr(pol, "pi_features_extractor") else pol.features_extractor
    if isinstance(fe, CombinedExtractor):
        if not all(isinstance(m, nn.Flatten) for m in fe.extractors.values()):
            raise ConfigError("only flat Box observations can be exported", name="features_extractor")
        keys = list(fe.extractors.keys())
    elif isinstance(fe, FlattenExtractor):
        keys = []
    else:
        raise ConfigError(f"cannot export features extractor {type(fe).__name__}", name="features_extractor")
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    activation = "identity"
    for m in pol.mlp_extractor.policy_net:
        if isinstance(m, nn.Linear):
            layers.append((m.weight.detach().cpu().numpy().T.copy(), m.bias.detach().cpu().numpy().copy()))
        elif isinstance(m, nn.Tanh):
            activation = "tanh"
        elif isinstance(m, nn.ReLU):
            activation = "relu"
        else:
            raise ConfigError(f"cannot export layer {type(m).__name__}", name="net_arch")
    head = pol.action_net
    layers.append((head.weight.detach().cpu().numpy().T.copy(), head.bias.detach().cpu().numpy().copy()))
    full = {
        **card,
        "format": FORMAT,
        "kind": "learned",
        "net": {"activation": activation, "shapes": [list(w.shape) for w, _ in layers], "obs_keys": keys},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    policy = LearnedPolicy(layers, full)
    if check is not None:
        obs_t, _ = pol.obs_to_tensor(check)
        with torch.no_grad():
            feats = pol.extract_features(obs_t, fe)
            latent = pol.mlp_extractor.forward_actor(feats)
            want = pol.action_net(latent).cpu().numpy()
            flat = feats.cpu().numpy()
        got = policy.batch_logits(flat)
        err = float(np.max(np.abs(got - want))) if want.size else 0.0
        if err > 1e-3:
            raise ConfigError(f"exported network differs from torch by {err:.2g}", name="export")
    return policy


def _versions() -> dict[str, str]:
    import stable_baselines3
    import torch

    out = {"stable_baselines3": stable_baselines3.__version__, "torch": str(torch.__version__)}
    try:
        from importlib.metadata import version

        out["agentroute"] = version("agentroute")
    except Exception:  # pragma: no cover - running from a source tree without metadata
        out["agentroute"] = "dev"
    return out


def warm_start_targets(router: Any, table: Any) -> tuple[np.ndarray, np.ndarray]:
    """A fitted predictive router's (quality, cost/scale) predictions on ``table``, in the table's option order.

    ``router`` is an agentroute predictive router (anything with ``options`` and ``predict_outcomes(texts,
    categories) -> (quality, usd)``), or its ``agentroute fit`` name (``linear``, ``mlp``, ``knn``), fitted here.
    """
    if isinstance(router, str):
        from agentroute.policies.predictive import make_router

        router = make_router(router).fit(table)
    if not hasattr(router, "predict_outcomes"):
        raise ConfigError(
            f"warm_start={type(router).__name__} cannot predict outcomes", name="warm_start",
            hint="pass a fitted predictive router (linear, mlp, knn) or its name",
        )
    opts = [str(o) for o in router.options]
    missing = [o for o in table.options if o not in opts]
    if missing:
        raise ConfigError(f"warm-start router does not know options {missing}", name="warm_start")
    cols = [opts.index(o) for o in table.options]
    qh, ch = router.predict_outcomes(table.texts, table.categories)
    return np.asarray(qh, dtype=np.float64)[:, cols], np.asarray(ch, dtype=np.float64)[:, cols] / table.cost_scale()


def behaviour_clone(
    model: Any,
    features: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    *,
    cost_weight_range: tuple[float, float],
    observe_cost_weight: bool,
    epochs: int = 30,
    temperature: float = 0.05,
    target_kind: str = "choice",
    seed: int = 0,
) -> float:
    """Warm-start the actor (and critic) from predicted outcomes ``cost`` (in cost-scale units).

    At λ drawn as in training, the actor learns the router's choice ``argmax(quality − λ·cost)`` (cross-entropy;
    ``target_kind="utility"`` regresses the logits on the utilities ``/ temperature`` instead) and the critic the
    best predicted utility. Returns the imitation accuracy of the last epoch (argmax agreement).
    """
    import torch

    rng = np.random.default_rng(seed)
    pol = model.policy
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3)
    n = len(features)
    lo, hi = cost_weight_range
    acc = 0.0
    with one_thread():
        for _ in range(epochs):
            u = rng.uniform(size=n)
            lam = lo + (hi - lo) * u * u
            util = quality - lam[:, None] * cost
            target = util.argmax(axis=1)
            x = features if not observe_cost_weight else np.hstack([features, lam[:, None].astype(np.float32)])
            order = rng.permutation(n)
            hits = 0
            for start in range(0, n, 256):
                idx = order[start : start + 256]
                obs = torch.as_tensor(x[idx], dtype=torch.float32)
                tgt = torch.as_tensor(target[idx])
                feats = pol.extract_features(obs, pol.pi_features_extractor)
                logits = pol.action_net(pol.mlp_extractor.forward_actor(feats))
                values = pol.predict_values(obs).squeeze(-1)
                want = torch.as_tensor(util[idx] / temperature, dtype=torch.float32)
                want_v = torch.as_tensor(util[idx].max(axis=1), dtype=torch.float32)
                if target_kind == "utility":  # the logits learn the predicted utilities, up to a shift
                    centred = logits - logits.mean(dim=1, keepdim=True)
                    loss = torch.nn.functional.mse_loss(centred, want - want.mean(dim=1, keepdim=True))
                else:  # the router's choice, as a label
                    loss = torch.nn.functional.cross_entropy(logits, tgt)
                loss = loss + 0.5 * torch.nn.functional.mse_loss(values, want_v)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                hits += int((logits.argmax(dim=1) == tgt).sum())
            acc = hits / n
    return acc


def query_metrics(policy: LearnedPolicy, env: Any, lambdas: Sequence[float]) -> dict[str, Any]:
    """Mean quality and USD cost of ``policy`` on every query of ``env``'s table at each λ, and of each option."""
    x = env._x[:, : env.feature_dim]
    q, c = env.table.quality, env.table.cost
    rows = np.arange(len(env.table))
    sweep = []
    for lam in lambdas:
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
    """See :func:`agentroute.policies.learned.fit_ppo_from_table`."""
    from agentroute.envs.query_routing import QueryRoutingEnv, resolve_table, table_features

    tbl = resolve_table(table, None)
    features, featurizer = table_features(tbl, featurizer)
    if cost_weights == "auto":
        from agentroute.envs.rewards import auto_cost_weight_range

        cost_weights = auto_cost_weight_range(tbl.quality, tbl.cost)
    env_kw: dict[str, Any] = {"features": features, "featurizer": featurizer, "reward": reward, "cost_unit": "scale"}
    if reward == "tradeoff" and baseline != "none":
        env_kw["baseline"] = baseline
    if cost_weights is None or isinstance(cost_weights, int | float):
        env_kw["cost_weight"] = 0.1 if cost_weights is None else float(cost_weights)
    else:
        env_kw["cost_weight_range"] = tuple(float(v) for v in cost_weights)
        env_kw["cost_weight_sampling"] = sampling
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
    policy.card["metrics"] = query_metrics(policy, probe, sorted({lo, (lo + hi) / 2, hi}))
    vec.close()
    if out is not None:
        policy.save(out)
    return policy


__all__ = [
    "ALGOS",
    "GRAPH_PPO",
    "QUERY_PPO",
    "export_model",
    "fit_env_policy",
    "fit_query_policy",
    "make_vec",
    "progress_callback",
    "query_metrics",
    "train_model",
]


def _const(env: Any) -> Callable[[], Any]:
    return lambda: env


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
    :class:`~agentroute.envs.graph_obs.GraphObsSpec`), ``raw`` otherwise (the network is exported, and serves
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
