"""stable-baselines3 (PPO, MaskablePPO): models, warm starts and the export of the actor to a :class:`LearnedPolicy`.

The policies' only module that imports torch and stable-baselines3, and only inside its functions; nothing imports
it at serving time, and it never imports the environments (the training loops that drive them live in
:mod:`agentroute.training`). Export reads the actor's linear layers (``mlp_extractor.policy_net`` then
``action_net``) into float32 arrays and checks, on sample observations, that the numpy network reproduces torch's
logits.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
from collections.abc import Callable, Iterator, Sequence
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
    quiet_logger(model)
    if learn:
        with one_thread():
            model.learn(total_timesteps=total_timesteps, callback=list(callbacks) or None)
    return model


def quiet_logger(model: Any) -> Any:
    """Give an SB3 model a logger that writes nowhere.

    With ``verbose=0`` and no tensorboard folder, SB3's default logger still creates an empty ``SB3-<date>`` folder in
    the temp dir at every ``learn``; a logger with no outputs and no folder creates nothing.
    """
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
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
        from agentroute.policies._factory import make_router

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


__all__ = [
    "ALGOS",
    "GRAPH_PPO",
    "QUERY_PPO",
    "WARM_LR",
    "behaviour_clone",
    "export_model",
    "make_vec",
    "one_thread",
    "progress_callback",
    "train_model",
    "warm_start_targets",
]
