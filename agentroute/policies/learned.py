"""Learned routing policies: trained with stable-baselines3, served with numpy alone.

A :class:`LearnedPolicy` is the actor network of a PPO or MaskablePPO model, exported to a ``.npz`` file of plain
float32 arrays plus a JSON **card** (what it was trained on, the reward, the λ range, metrics, the seed, the fitted
featurizer). Nothing is pickled, and serving imports neither torch nor stable-baselines3: a decision is a few
numpy matrix products on preallocated buffers (:func:`agentroute.policies._nn.forward`). Training lives in
:mod:`agentroute.training` (it drives the environments); the export in :mod:`agentroute.policies._sb3`.

A policy trained on ``agentroute/QueryRouting-v0`` chooses among the options of its routing table; in a graph it
matches candidates by id, else by their descriptor's ``model`` or ``option`` (:meth:`LearnedPolicy.bind` refuses a
graph with a tier it cannot map). ``cost_weight`` is λ per USD. The network itself was trained on λ in cost units
of its table (the card's ``cost_scale_usd``: the mean cost of the table's priciest option) and observes it when it
was trained over a λ range (the card's ``cost_weight_range``, in those units), so one policy serves the whole price
range: ``policy.with_cost_weight(300.0)``; a λ outside the trained range is served as the nearest edge of it.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import ConfigError, DataError
from agentroute.features import featurizer_from_dict
from agentroute.policies._card import (
    FORMAT,
    Arrays,
    Card,
    load_policy,
    np_rng_from,
    np_rng_state,
    register,
    save_policy,
)
from agentroute.policies._cost import check_cost_weight, decision_cost_weight
from agentroute.policies._graph_obs import FEATURE_BOUND, GraphObsSpec
from agentroute.policies._nn import ACTIVATIONS, check_layers, forward
from agentroute.policies._table import bind_options
from agentroute.policies.baselines import DeclaredDefault
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase

LEGACY_FORMAT = "agentroute.learned/1"


def policy_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights .npz, card .json) for a policy path given with either suffix, or with none."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        return p.with_suffix(".npz"), p.with_suffix(".json")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


@register("learned", "learned")
class LearnedPolicy(PolicyBase):
    """An exported actor network: ``layers`` of ``(W (in, out), b (out,))`` float32, with ``card`` describing it.

    ``featurizer`` turns a task's text into the network's query features (restored from the card when omitted);
    ``cost_weight`` is λ per USD for policies that observe it (default: the middle of the trained range);
    ``deterministic`` takes the most likely option, else samples with ``seed``.
    """

    family = "learned"
    kind = "learned"
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
        if act not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {act!r}", name="activation", hint=f"use {ACTIVATIONS}")
        self.activation = act
        self.W = [np.ascontiguousarray(w, dtype=np.float32) for w, _ in layers]
        self.b = [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for _, b in layers]
        self.layers = list(zip(self.W, self.b, strict=True))
        try:
            check_layers(self.layers)
        except ValueError as e:
            raise ConfigError(str(e), name="layers") from None
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
        """The λ range the network was trained on, in cost units of :attr:`cost_scale_usd` (its input's units)."""
        self.cost_scale_usd = float(self.card.get("cost_scale_usd", 1.0))
        if not (math.isfinite(self.cost_scale_usd) and self.cost_scale_usd > 0):
            raise ConfigError(f"cost_scale_usd={self.cost_scale_usd} must be > 0", name="cost_scale_usd")
        self.cost_weight = (
            check_cost_weight(cost_weight) if cost_weight is not None else (lo + hi) / 2.0 / self.cost_scale_usd
        )
        """λ per USD."""
        self.deterministic = deterministic
        self._rng = np.random.default_rng(seed)
        self.version = str(self.card.get("version", "1"))
        self.name = f"learned:{self.card.get('algo', 'ppo')}"
        if featurizer is None and self.card.get("featurizer") is not None:
            featurizer = featurizer_from_dict(self.card["featurizer"])
        self.featurizer = featurizer
        self._index = {o: i for i, o in enumerate(self.options)}
        costs = self.card.get("option_costs_usd")
        self._cheapest: int | None = int(np.argmin(costs)) if costs and len(costs) == len(self.options) else None
        self._graph: Any = None
        obs_kind = str(self.card.get("obs", {}).get("kind", "query"))
        self._n_feat = self.input_dim - (1 if self.observe_cost_weight else 0)
        if obs_kind == "graph":
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
        self._default = DeclaredDefault()

    # ------------------------------------------------------------------ the network

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for one input row (features, then λ when observed); returns an internal buffer, copy to keep."""
        return forward(self.layers, x, activation=self.activation, bufs=self._bufs)

    def act(self, x: np.ndarray) -> int:
        """The most likely option index for one input row (the serving hot path)."""
        return int(self.logits(x).argmax())

    def batch_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for many input rows ``(n, input_dim)``."""
        return forward(self.layers, x, activation=self.activation)

    def network_cost_weight(self, cost_weight: float | None = None) -> float:
        """The network's λ input for λ per USD ``cost_weight`` (default: the policy's): in cost units, clamped."""
        lam = self.cost_weight if cost_weight is None else float(cost_weight)
        return self._clamp(lam * self.cost_scale_usd)

    def inputs(self, features: np.ndarray, cost_weight: float | None = None) -> np.ndarray:
        """Network inputs from query features ``(n, dim)``: clipped, with λ appended when the policy observes it."""
        f = np.clip(np.asarray(features, dtype=np.float32), -FEATURE_BOUND, FEATURE_BOUND)
        if f.ndim == 1:
            f = f.reshape(1, -1)
        if self.observe_cost_weight:
            lam = self.network_cost_weight(cost_weight)
            f = np.hstack([f, np.full((f.shape[0], 1), lam, dtype=np.float32)])
        if f.shape[1] != self.input_dim:
            raise DataError(
                f"features have {f.shape[1]} columns, the network expects {self.input_dim}",
                name="features",
                hint="use the featurizer saved with the policy",
            )
        return f

    def _clamp(self, lam: float) -> float:
        """λ (cost units) inside the trained range: beyond it the policy acts as at the nearest edge."""
        lo, hi = self.cost_weight_range
        return lo if lam < lo else hi if lam > hi else lam

    def predict(self, features: np.ndarray, cost_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chosen option index per row, softmax probability of every option) for query features ``(n, dim)``.

        ``cost_weight`` is λ per USD. At λ = ∞ (only cost counts) every row goes to the option with the lowest mean
        cost in training.
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
        """The same network serving price weight ``cost_weight`` (λ per USD; ``inf``: cost only)."""
        lam = check_cost_weight(cost_weight)
        return LearnedPolicy(
            list(zip(self.W, self.b, strict=True)),
            self.card,
            featurizer=self.featurizer,
            cost_weight=lam,
            deterministic=self.deterministic,
        )

    # ------------------------------------------------------------------ the RouterPolicy protocol

    def bind(self, spec: GraphSpec) -> None:
        """Refuse a graph the network cannot route.

        A tier that is none of its options, or (for a policy trained on a graph's observations) an agent or tier
        its action vocabulary lacks, could never be chosen.
        """
        if self._graph is not None:
            missing = [a for a in (*spec.agents, *spec.tiers) if a not in self._graph.actions]
            if missing:
                raise ConfigError(
                    f"{self.name} was trained on a graph with actions {', '.join(self._graph.actions)}; graph "
                    f"{spec.graph!r} also has {', '.join(missing)}, which it could never choose",
                    name=missing[0], hint="train it on this graph (`agentroute train`)",
                )
        elif self._n_feat >= 0:
            bind_options(self.name, self.options, spec)

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
        lam_usd = decision_cost_weight(obs, self.cost_weight)
        if math.isinf(lam_usd):
            c = min(obs.candidates, key=lambda k: (k.rank, float(k.cost_estimate or 0)))
            return Decision(c.id, {k.id: (1.0 if k.id == c.id else 0.0) for k in obs.candidates},
                            reason=f"{self.name} at λ=inf: only cost counts, cheapest is {c.id}")
        lam = self.network_cost_weight(lam_usd)
        x = self._x
        if self._graph is not None:
            g = self._graph
            g.flatten(g.encode(obs, self._task_features(obs), lam), out=x)
            z = self.logits(x)
            matched = [(c.id, self._index[c.id]) for c in obs.candidates if c.id in self._index]
        elif self._n_feat >= 0:
            n_feat = self._n_feat
            np.clip(self._task_features(obs), -FEATURE_BOUND, FEATURE_BOUND, out=x[:n_feat])
            if self.observe_cost_weight:
                x[n_feat] = lam
            z = self.logits(x)
            matched = [(c.id, j) for c in obs.candidates if (j := self._option_of(c.id, c.descriptor)) is not None]
        else:
            raise ConfigError(
                f"{self.name} was trained on raw observations of {self.card.get('env')!r} and cannot read a "
                "routing Observation",
                name="obs",
                hint="call policy.logits(x) on that environment's observations",
            )
        if not matched and obs.kind != "model":
            d = self._default.decide(obs)
            return Decision(d.chosen, d.probabilities, reason=f"{self.name}: not a model point; {d.reason}")
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
            reason=f"{self.name} at λ={lam_usd:g}/USD: {chosen} scores highest (p={soft[chosen]:.2f})",
            scores=scores,
            explored=not self.deterministic and soft[chosen] < max(soft.values()),
            evidence={"cost_weight": lam_usd, "softmax": soft},
        )

    # ------------------------------------------------------------------ files

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Card fields (the training card, λ per USD) and the layers as ``w{i}``/``b{i}``."""
        card = {k: v for k, v in self.card.items()
                if k not in ("format", "family", "kind", "arrays", "weights", "rng", "upgraded_from")}
        card.update(cost_unit="usd", cost_weight=self.cost_weight, deterministic=self.deterministic)
        if not self.deterministic:
            card["rng"] = np_rng_state(self._rng)  # a sampling policy continues the same random stream
        arrays: dict[str, np.ndarray] = {}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        return card, arrays

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.json`` (the card) and ``<path>.npz`` (the layers); returns the ``.npz`` path."""
        npz, card_path = policy_paths(path)
        save_policy(self, card_path)
        return npz

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, *, cost_weight: float | None = None,
                  deterministic: bool | None = None, seed: int | None = None, featurizer: Any = None
                  ) -> LearnedPolicy:
        """Rebuild from a card and its arrays (the keyword arguments override what the card says)."""
        n = sum(1 for k in arrays if re.fullmatch(r"w\d+", k))
        if n == 0:
            raise DataError(f"{arrays.source}: no layers (w0, b0, ...)", name="w0")
        layers = [(arrays.get(f"w{i}", ndim=2, dtype=np.float32), arrays.get(f"b{i}", dtype=np.float32).reshape(-1))
                  for i in range(n)]
        card.texts("options", nonempty=True)
        card.nums("cost_weight_range", [0.0, 0.0], length=2, lo=0.0)
        card.num("cost_scale_usd", 1.0, lo=1e-300)
        card.flag("observe_cost_weight", False)
        card.nums("option_costs_usd", None, lo=0.0)
        net = card.obj("net", None)
        if net is not None:
            net.text("activation", "tanh", choices=ACTIVATIONS)
        obs = card.obj("obs", None)
        kind = obs.text("kind", "query") if obs is not None else "query"
        if kind == "graph":
            assert obs is not None
            obs.build("spec", GraphObsSpec.from_dict)
        raw = card.raw()
        if featurizer is None:
            featurizer = card.build("featurizer", featurizer_from_dict, None)
        lam = card.num("cost_weight", None, lo=0.0, finite=False) if cost_weight is None else cost_weight
        det = card.flag("deterministic", True) if deterministic is None else deterministic
        policy = cls(layers, raw, featurizer=featurizer, cost_weight=lam, deterministic=det, seed=seed)
        if seed is None:
            policy._rng = np_rng_from(card, "rng", None)
        return policy


def load_learned(path: str | Path, **kwargs: Any) -> LearnedPolicy:
    """Load a learned policy from its ``.npz`` or its ``.json`` card (no pickle); see :func:`load_policy`.

    Keyword arguments go to :class:`LearnedPolicy` (``cost_weight`` per USD, ``deterministic``, ``seed``). A
    policy of the earlier format given by its ``.npz`` alone is read through the card embedded in it.
    """
    p = Path(path)
    if not p.suffix and not p.is_dir():
        p = p.with_name(p.name + ".json") if p.with_name(p.name + ".json").exists() else p.with_name(p.name + ".npz")
    policy = load_policy(p, **kwargs)
    if not isinstance(policy, LearnedPolicy):
        raise DataError(f"{p}: a {type(policy).__name__}, not a learned policy", name=str(p))
    return policy


__all__ = ["FEATURE_BOUND", "FORMAT", "LEGACY_FORMAT", "LearnedPolicy", "load_learned", "policy_paths"]
