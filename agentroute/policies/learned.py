"""Learned routing policies: trained with stable-baselines3, served with numpy alone.

A :class:`LearnedPolicy` is the actor network of a PPO or MaskablePPO model, exported to a ``.npz`` file of plain
float32 arrays plus a JSON **card** (what it was trained on, the reward, the λ range, metrics, the seed, the fitted
featurizer). Nothing is pickled, and serving imports neither torch nor stable-baselines3: a decision is a few
numpy matrix products on preallocated buffers. Training lives in :mod:`agentroute.policies._sb3`, imported only
when :func:`fit_ppo_from_table` or :func:`train_policy` runs.

A policy trained on ``agentroute/QueryRouting-v0`` chooses among the options of its routing table; in a graph it
matches candidates by id, else by their descriptor's ``model`` or ``option``. ``cost_weight`` (λ, in cost-scale
units, see :func:`agentroute.envs.rewards.cost_scale`) is an input of the network when the policy was trained over a
λ range, so one policy serves the whole price range: ``policy.with_cost_weight(0.3)``; a λ outside the trained range
is served as the nearest edge of it.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import ConfigError, DataError
from agentroute.policies.base import BasePolicy
from agentroute.routing import Decision, Observation

FORMAT = "agentroute.learned/1"
FEATURE_BOUND = 100.0  # the environments' observation bound (agentroute.envs.query_routing.FEATURE_BOUND)
_ACTIVATIONS = ("tanh", "relu", "identity")


def policy_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights .npz, card .json) for a policy path given with either suffix, or with none."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        return p.with_suffix(".npz"), p.with_suffix(".json")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


class LearnedPolicy(BasePolicy):
    """An exported actor network: ``layers`` of ``(W (in, out), b (out,))`` float32, with ``card`` describing it.

    ``featurizer`` turns a task's text into the network's query features (restored from the card when omitted);
    ``cost_weight`` is λ for policies that observe it (default: the middle of the trained range);
    ``deterministic`` takes the most likely option, else samples with ``seed``.
    """

    name = "learned"

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        card: Mapping[str, Any],
        *,
        featurizer: Any = None,
        cost_weight: float | None = None,
        deterministic: bool = True,
        seed: int | None = None,
    ) -> None:
        if not layers:
            raise ConfigError("LearnedPolicy needs at least one layer", name="layers")
        self.card = dict(card)
        act = str(self.card.get("net", {}).get("activation", "tanh"))
        if act not in _ACTIVATIONS:
            raise ConfigError(f"unknown activation {act!r}", name="activation", hint=f"use {_ACTIVATIONS}")
        self.activation = act
        self.W = [np.ascontiguousarray(w, dtype=np.float32) for w, _ in layers]
        self.b = [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for _, b in layers]
        for i in range(len(self.W)):
            if self.W[i].ndim != 2 or self.W[i].shape[1] != self.b[i].shape[0]:
                raise ConfigError(f"layer {i}: W {self.W[i].shape} does not match b {self.b[i].shape}", name="layers")
            if i and self.W[i].shape[0] != self.W[i - 1].shape[1]:
                raise ConfigError(f"layer {i} expects {self.W[i].shape[0]} inputs, gets {self.W[i - 1].shape[1]}")
        self.options: list[str] = [str(o) for o in self.card.get("options", [])]
        if len(self.options) != self.W[-1].shape[1]:
            raise ConfigError(
                f"card lists {len(self.options)} options but the network has {self.W[-1].shape[1]} outputs",
                name="options",
            )
        self.input_dim = int(self.W[0].shape[0])
        self.observe_cost_weight = bool(self.card.get("observe_cost_weight", False))
        lo, hi = (float(v) for v in self.card.get("cost_weight_range", [0.0, 0.0]))
        self.cost_weight_range = (lo, hi)
        self.cost_weight = float(cost_weight) if cost_weight is not None else (lo + hi) / 2.0
        self.cost_scale_usd = float(self.card.get("cost_scale_usd", 1.0))
        self.deterministic = deterministic
        self._rng = np.random.default_rng(seed)
        self.version = str(self.card.get("version", "1"))
        self.name = f"learned:{self.card.get('algo', 'ppo')}"
        if featurizer is None and self.card.get("featurizer") is not None:
            from agentroute.features import featurizer_from_dict

            featurizer = featurizer_from_dict(self.card["featurizer"])
        self.featurizer = featurizer
        self._index = {o: i for i, o in enumerate(self.options)}
        costs = self.card.get("option_costs_usd")
        self._cheapest: int | None = int(np.argmin(costs)) if costs and len(costs) == len(self.options) else None
        self._graph: Any = None
        obs_kind = str(self.card.get("obs", {}).get("kind", "query"))
        self._n_feat = self.input_dim - (1 if self.observe_cost_weight else 0)
        if obs_kind == "graph":
            from agentroute.envs.graph_obs import GraphObsSpec

            self._graph = GraphObsSpec.from_dict(self.card["obs"]["spec"])
            if self._graph.input_dim != self.input_dim:
                raise ConfigError(
                    f"graph observation has {self._graph.input_dim} inputs, the network {self.input_dim}", name="obs"
                )
            self.observe_cost_weight = self._graph.observe_cost_weight
            self._n_feat = self._graph.feature_dim
        elif obs_kind != "query":
            self._n_feat = -1  # raw observations: serve through logits()
        self._bufs = [np.empty(w.shape[1], dtype=np.float32) for w in self.W]
        self._x = np.zeros(self.input_dim, dtype=np.float32)
        self._feature_cache: OrderedDict[tuple[str, str | None], np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ the network

    def _act(self, h: np.ndarray) -> None:
        if self.activation == "tanh":
            np.tanh(h, out=h)
        elif self.activation == "relu":
            np.maximum(h, 0.0, out=h)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for one input row (features, then λ when observed); returns an internal buffer, copy to keep."""
        h = x
        last = len(self.W) - 1
        for i, (w, b, buf) in enumerate(zip(self.W, self.b, self._bufs, strict=True)):
            np.matmul(h, w, out=buf)
            buf += b
            if i < last:
                self._act(buf)
            h = buf
        return h

    def act(self, x: np.ndarray) -> int:
        """The most likely option index for one input row (the serving hot path)."""
        return int(self.logits(x).argmax())

    def batch_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for many input rows ``(n, input_dim)``."""
        h = np.asarray(x, dtype=np.float32)
        for i, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            h = h @ w + b
            if i < len(self.W) - 1:
                h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0.0) if self.activation == "relu" else h
        return h

    def inputs(self, features: np.ndarray, cost_weight: float | None = None) -> np.ndarray:
        """Network inputs from query features ``(n, dim)``: clipped, with λ appended when the policy observes it."""
        f = np.clip(np.asarray(features, dtype=np.float32), -FEATURE_BOUND, FEATURE_BOUND)
        if f.ndim == 1:
            f = f.reshape(1, -1)
        if self.observe_cost_weight:
            lam = self._clamp(self.cost_weight if cost_weight is None else float(cost_weight))
            f = np.hstack([f, np.full((f.shape[0], 1), lam, dtype=np.float32)])
        if f.shape[1] != self.input_dim:
            raise DataError(
                f"features have {f.shape[1]} columns, the network expects {self.input_dim}",
                name="features",
                hint="use the featurizer saved with the policy",
            )
        return f

    def _clamp(self, lam: float) -> float:
        """λ inside the trained range: beyond it the policy acts as at the nearest edge (it never saw more)."""
        lo, hi = self.cost_weight_range
        return lo if lam < lo else hi if lam > hi else lam

    def predict(self, features: np.ndarray, cost_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chosen option index per row, softmax probability of every option) for query features ``(n, dim)``.

        At λ = ∞ (only cost counts) every row goes to the option with the lowest mean cost in training.
        """
        lam = self.cost_weight if cost_weight is None else float(cost_weight)
        if math.isinf(lam) and self._cheapest is not None:
            n = np.asarray(features).reshape(-1, self._n_feat).shape[0] if self._n_feat > 0 else len(features)
            p = np.zeros((n, len(self.options)))
            p[:, self._cheapest] = 1.0
            return np.full(n, self._cheapest), p
        z = self.batch_logits(self.inputs(features, cost_weight)).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p.argmax(axis=1), p

    def predict_texts(
        self, texts: Sequence[str], categories: Sequence[str | None] | None = None, cost_weight: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` on raw queries, featurized with the policy's own featurizer."""
        return self.predict(self._featurizer().transform(list(texts), categories), cost_weight)

    def with_cost_weight(self, cost_weight: float) -> LearnedPolicy:
        """The same network serving price weight ``cost_weight`` (λ in cost-scale units)."""
        lam = float(cost_weight)
        if math.isnan(lam) or lam < 0:
            raise ConfigError(f"cost_weight={cost_weight!r} must be a number >= 0 (inf: cost only)", name="cost_weight")
        return LearnedPolicy(
            list(zip(self.W, self.b, strict=True)),
            self.card,
            featurizer=self.featurizer,
            cost_weight=lam,
            deterministic=self.deterministic,
        )

    # ------------------------------------------------------------------ the RouterPolicy protocol

    def _featurizer(self) -> Any:
        if self.featurizer is None:
            raise ConfigError("this policy has no featurizer", name="featurizer", hint="pass featurizer=")
        return self.featurizer

    def _task_features(self, obs: Observation) -> np.ndarray:
        vec = obs.task.features.get("vector") if obs.task.features else None
        if vec is not None and len(vec) == self._n_feat:
            return np.asarray(vec, dtype=np.float32)
        key = (obs.task.text, obs.task.category)
        hit = self._feature_cache.get(key)
        if hit is None:
            hit = self._featurizer().transform([obs.task.text], [obs.task.category])[0]
            self._feature_cache[key] = hit
            if len(self._feature_cache) > 1024:
                self._feature_cache.popitem(last=False)
        return hit

    def _option_of(self, cid: str, descriptor: Mapping[str, Any]) -> int | None:
        j = self._index.get(cid)
        if j is None:
            for k in ("option", "model"):
                v = descriptor.get(k)
                if isinstance(v, str) and v in self._index:
                    return self._index[v]
        return j

    def decide(self, obs: Observation) -> Decision:
        """Choose the candidate whose option the network scores highest among those offered."""
        if math.isinf(self.cost_weight):
            c = min(obs.candidates, key=lambda k: (k.rank, float(k.cost_estimate or 0)))
            return Decision(c.id, {k.id: (1.0 if k.id == c.id else 0.0) for k in obs.candidates},
                            reason=f"{self.name} at λ=inf: only cost counts, cheapest is {c.id}")
        x = self._x
        if self._graph is not None:
            g = self._graph
            g.flatten(g.encode(obs, self._task_features(obs), self._clamp(self.cost_weight)), out=x)
            z = self.logits(x)
            matched = [(c.id, self._index[c.id]) for c in obs.candidates if c.id in self._index]
        elif self._n_feat >= 0:
            n_feat = self._n_feat
            np.clip(self._task_features(obs), -FEATURE_BOUND, FEATURE_BOUND, out=x[:n_feat])
            if self.observe_cost_weight:
                x[n_feat] = self._clamp(self.cost_weight)
            z = self.logits(x)
            matched = [(c.id, j) for c in obs.candidates if (j := self._option_of(c.id, c.descriptor)) is not None]
        else:
            raise ConfigError(
                f"{self.name} was trained on raw observations of {self.card.get('env')!r} and cannot read a "
                "routing Observation",
                name="obs",
                hint="call policy.logits(x) on that environment's observations",
            )
        if not matched:
            c = obs.candidates[0]
            return Decision(
                c.id,
                {k.id: (1.0 if k.id == c.id else 0.0) for k in obs.candidates},
                reason=f"no candidate matches the policy's options ({', '.join(self.options)}); took {c.id}",
            )
        scores = {cid: float(z[j]) for cid, j in matched}
        top = max(scores.values())
        expz = {cid: math.exp(s - top) for cid, s in scores.items()}
        total = sum(expz.values())
        soft = {c.id: expz.get(c.id, 0.0) / total for c in obs.candidates}
        if self.deterministic:
            chosen = max(scores, key=lambda k: scores[k])
            probs = {c.id: (1.0 if c.id == chosen else 0.0) for c in obs.candidates}
        else:
            ids = list(soft)
            chosen = ids[int(self._rng.choice(len(ids), p=np.asarray([soft[i] for i in ids])))]
            probs = soft
        return Decision(
            chosen,
            probs,
            reason=f"{self.name} at λ={self.cost_weight:g}: {chosen} scores highest (p={soft[chosen]:.2f})",
            scores=scores,
            explored=not self.deterministic and soft[chosen] < max(soft.values()),
            evidence={"cost_weight": self.cost_weight, "softmax": soft},
        )

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (weights, and the card embedded) and ``<path>.json`` (the card); returns the .npz."""
        npz, card_path = policy_paths(path)
        npz.parent.mkdir(parents=True, exist_ok=True)
        card = {**self.card, "format": FORMAT, "kind": "learned", "weights": npz.name}
        text = json.dumps(card, indent=1, sort_keys=True)
        arrays: dict[str, np.ndarray] = {"card_json": np.asarray(text)}
        for i, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            arrays[f"w{i}"] = w
            arrays[f"b{i}"] = b
        with npz.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        card_path.write_text(text + "\n", encoding="utf-8")
        self.card = card
        return npz


def load_learned(path: str | Path, **kwargs: Any) -> LearnedPolicy:
    """Load a policy saved by :meth:`LearnedPolicy.save` from its ``.npz`` or its ``.json`` card (no pickle).

    Keyword arguments go to :class:`LearnedPolicy` (``cost_weight``, ``deterministic``, ``seed``).
    """
    p = Path(path)
    if p.suffix == ".json":
        try:
            card = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{p}: cannot read the policy card: {e}", name=str(p)) from e
        npz = p.with_name(str(card.get("weights") or p.with_suffix(".npz").name))
    else:
        npz, card = policy_paths(p)[0], None
    if not npz.exists():
        raise DataError(f"{npz}: no such policy file", name=str(npz), hint="train one with `agentroute train`")
    try:
        with np.load(npz, allow_pickle=False) as z:
            if card is None:
                card = json.loads(str(z["card_json"]))
            n = sum(1 for k in z.files if k.startswith("w"))
            layers = [(z[f"w{i}"], z[f"b{i}"]) for i in range(n)]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{npz}: not an agentroute learned policy: {e}", name=str(npz)) from e
    if card.get("format") != FORMAT:
        raise DataError(
            f"{npz}: policy format {card.get('format')!r} is not {FORMAT!r}", name=str(npz), hint="retrain it"
        )
    return LearnedPolicy(layers, card, **kwargs)


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
    dimensions). ``cost_weights`` is a fixed λ, an ``(a, b)`` range observed by the policy, or ``"auto"``: from 0 to
    1.5 times the steepest slope of the single options' cost–quality hull
    (:func:`agentroute.envs.rewards.auto_cost_weight_range`), so the range covers every price at which the best
    option changes.
    """
    from agentroute.policies._sb3 import fit_query_policy

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


__all__ = ["FORMAT", "LearnedPolicy", "fit_ppo_from_table", "load_learned", "policy_paths"]
