"""Policies fitted from logged decisions (``agentroute fit --logged``): a reward model per option, greedy at λ.

:class:`ObsFeatures` turns an :class:`~agentroute.routing.Observation` into a fixed numeric vector (the task's
numeric features and category, its position, the budget left, the task's earlier choices). :class:`RewardModel`
fits, for every ``(point, option)``, ridge regressions of the quality and of the USD cost still to come after a
decision on those features, optionally importance-weighted by ``1 / propensity`` (so the options a logging policy
seldom took count as much as the ones it favoured). :class:`LoggedQPolicy` picks the offered option with the highest
predicted ``quality − λ·cost``. The same reward model is the doubly robust estimator's in :mod:`agentroute.offpolicy`.

This module never reads the store or an export: records arrive as observations with their outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, register
from agentroute.policies._cost import check_cost_weight, decision_cost_weight
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase, one_hot

_SEP = "\x1f"  # joins a point and an option into one key (never part of a point name)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and np.isfinite(v):
        return float(v)
    return None


def _frac(obs: Observation, dim: str) -> float:
    lim = getattr(obs.budget.limits, dim)
    rem = getattr(obs.budget.remaining, dim)
    if lim is None or rem is None or float(lim) <= 0:
        return 1.0
    return float(rem) / float(lim)


class ObsFeatures:
    """The numeric view of an observation a reward model reads; its vocabulary is learned from logged ones.

    Columns: ``step``, the number of earlier decisions, the share of each budget dimension left (1 when
    unlimited), each numeric task feature seen in the logs (0 when absent), one indicator per category and one per
    earlier ``point=choice`` of the task.
    """

    _DIMS = ("usd", "tokens", "steps")

    def __init__(self, numeric: Sequence[str] = (), categories: Sequence[str] = (),
                 history: Sequence[str] = ()) -> None:
        self.numeric = tuple(numeric)
        self.categories = tuple(categories)
        self.history = tuple(history)
        self._cat = {c: i for i, c in enumerate(self.categories)}
        self._hist = {h: i for i, h in enumerate(self.history)}

    @classmethod
    def learn(cls, observations: Sequence[Observation], *, max_history: int = 64) -> ObsFeatures:
        """The vocabulary of ``observations``: numeric feature names, categories and earlier choices."""
        numeric: set[str] = set()
        cats: set[str] = set()
        hist: dict[str, int] = {}
        for o in observations:
            for k, v in o.task.features.items():
                if k != "category" and _num(v) is not None:
                    numeric.add(str(k))
            if o.task.category is not None:
                cats.add(str(o.task.category))
            for p, c in o.history:
                key = f"{p}={c}"
                hist[key] = hist.get(key, 0) + 1
        top = sorted(hist, key=lambda k: (-hist[k], k))[:max_history]
        return cls(sorted(numeric), sorted(cats), sorted(top))

    @property
    def width(self) -> int:
        """Length of a feature vector."""
        return 2 + len(self._DIMS) + len(self.numeric) + len(self.categories) + len(self.history)

    def vector(self, obs: Observation) -> np.ndarray:
        """The features of one observation."""
        x = np.zeros(self.width, dtype=np.float64)
        x[0] = obs.step
        x[1] = len(obs.history)
        i = 2
        for d in self._DIMS:
            x[i] = _frac(obs, d)
            i += 1
        feats = obs.task.features
        for name in self.numeric:
            v = _num(feats.get(name))
            x[i] = 0.0 if v is None else v
            i += 1
        j = self._cat.get(str(obs.task.category)) if obs.task.category is not None else None
        if j is not None:
            x[i + j] = 1.0
        i += len(self.categories)
        for p, c in obs.history:
            h = self._hist.get(f"{p}={c}")
            if h is not None:
                x[i + h] = 1.0
        return x

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a card."""
        return {"numeric": list(self.numeric), "categories": list(self.categories), "history": list(self.history)}

    @classmethod
    def from_card(cls, card: Card) -> ObsFeatures:
        """The inverse of :meth:`to_dict`."""
        return cls(card.texts("numeric", []), card.texts("categories", []), card.texts("history", []))


class RewardModel:
    """Ridge regressions of the quality and the cost to come, one pair per ``(point, option)`` key.

    Each key's regression is shrunk (``alpha``) towards the mean over all logged decisions, so a key seen a few
    times predicts close to that mean; a key never logged predicts it exactly.
    """

    def __init__(self, keys: Sequence[str], mean: np.ndarray, scale: np.ndarray, theta_q: np.ndarray,
                 theta_c: np.ndarray, base: tuple[float, float], counts: np.ndarray) -> None:
        self.keys = tuple(keys)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.mean, self.scale = mean, scale
        self.theta_q, self.theta_c = theta_q, theta_c
        self.base = base
        self.counts = counts

    @staticmethod
    def key(point: str, option: str) -> str:
        """The key of an option at a point."""
        return f"{point}{_SEP}{option}"

    @classmethod
    def fit(cls, x: np.ndarray, keys: Sequence[str], quality: np.ndarray, cost: np.ndarray,
            weights: np.ndarray | None = None, *, alpha: float = 1.0) -> RewardModel:
        """Fit on rows ``x`` (one per logged decision) with their keys, quality to come and cost to come."""
        x = np.asarray(x, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
        c = np.asarray(cost, dtype=np.float64)
        w = np.ones(len(q)) if weights is None else np.asarray(weights, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(q) or len(q) != len(c) or len(w) != len(q) or len(keys) != len(q):
            raise ConfigError("RewardModel.fit: x, keys, quality, cost and weights must have one row each")
        if len(q) == 0:
            raise ConfigError("RewardModel.fit: no logged decision to fit on", name="records")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
        wsum = w.sum()
        base = (float(w @ q / wsum), float(w @ c / wsum)) if wsum > 0 else (float(q.mean()), float(c.mean()))
        ordered = sorted(set(keys))
        arr = np.asarray(keys)
        d = z.shape[1]
        tq = np.zeros((len(ordered), d))
        tc = np.zeros((len(ordered), d))
        counts = np.zeros(len(ordered), dtype=np.int64)
        c_scale = max(float(np.abs(c).max()), 1e-12)  # costs are tiny: fit them in units of their largest
        for i, k in enumerate(ordered):
            rows = arr == k
            zk, wk = z[rows], w[rows]
            a = zk.T @ (zk * wk[:, None]) + alpha * np.eye(d)
            tq[i] = np.linalg.solve(a, zk.T @ (wk * (q[rows] - base[0])))
            tc[i] = np.linalg.solve(a, zk.T @ (wk * (c[rows] - base[1]) / c_scale)) * c_scale
            counts[i] = int(rows.sum())
        return cls(ordered, mean, scale, tq, tc, base, counts)

    def predict(self, x: np.ndarray, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted quality and cost to come for rows ``x`` under their keys."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = np.hstack([np.ones((len(x), 1)), (x - self.mean) / self.scale])
        q = np.full(len(x), self.base[0])
        c = np.full(len(x), self.base[1])
        for r, k in enumerate(keys):
            i = self.index.get(k)
            if i is not None:
                q[r] += z[r] @ self.theta_q[i]
                c[r] += z[r] @ self.theta_c[i]
        return q, c

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a card saves."""
        return {"mean": self.mean, "scale": self.scale, "theta_q": self.theta_q, "theta_c": self.theta_c,
                "base": np.asarray(self.base, dtype=np.float64), "counts": self.counts}

    @classmethod
    def from_arrays(cls, keys: Sequence[str], arrays: Arrays) -> RewardModel:
        """The inverse of :meth:`arrays`."""
        base = arrays.get("base", ndim=1)
        return cls(keys, arrays.get("mean", ndim=1), arrays.get("scale", ndim=1), arrays.get("theta_q", ndim=2),
                   arrays.get("theta_c", ndim=2), (float(base[0]), float(base[1])), arrays.get("counts", ndim=1))


def target_values(model: RewardModel, x: np.ndarray, pair_row: np.ndarray, pair_key: Sequence[str],
                  pair_p: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Quality and cost to come under a target at each of ``rows`` decisions: ``Σ_a π(a|s)·q̂(s, a)``.

    Pair ``k`` is option key ``pair_key[k]`` offered at row ``pair_row[k]`` (features ``x[pair_row[k]]``), taken by
    the target with probability ``pair_p[k]``.
    """
    pq, pc = model.predict(x[pair_row], pair_key)
    vq = np.bincount(pair_row, weights=pair_p * pq, minlength=rows)
    vc = np.bincount(pair_row, weights=pair_p * pc, minlength=rows)
    return vq, vc


def fitted_q(x: np.ndarray, keys: Sequence[str], start: tuple[np.ndarray, np.ndarray],
             own: tuple[np.ndarray, np.ndarray], nxt: np.ndarray, pairs: tuple[np.ndarray, Sequence[str], np.ndarray],
             train: np.ndarray, *, passes: int, alpha: float = 1.0) -> RewardModel:
    """Fitted Q evaluation of a target policy on logged decisions (rows ``train`` only).

    The first fit regresses ``start`` (the quality and cost to come the log saw: the logging policy's continuation);
    each of ``passes`` more replaces a row's continuation by its ``own`` quality and cost plus the model's value
    under the target at the task's next decision (row ``nxt[j]``, ``-1`` for none; ``pairs`` as in
    :func:`target_values`). After as many passes as a task has decisions after its first, ``q̂(s, a)`` estimates
    the reward to come when the target acts from then on.
    """
    tk = [keys[j] for j in train]
    model = RewardModel.fit(x[train], tk, start[0][train], start[1][train], alpha=alpha)
    has_next = train[nxt[train] >= 0]
    pair_row, pair_key, pair_p = pairs
    sel = np.isin(pair_row, nxt[has_next])
    keys_sel = [k for k, s in zip(pair_key, sel, strict=True) if s]
    for _ in range(passes):
        vq, vc = target_values(model, x, pair_row[sel], keys_sel, pair_p[sel], len(x))
        tq, tc = own[0].copy(), own[1].copy()
        tq[has_next] += vq[nxt[has_next]]
        tc[has_next] += vc[nxt[has_next]]
        model = RewardModel.fit(x[train], tk, tq[train], tc[train], alpha=alpha)
    return model


@register("logged", "q-linear")
class LoggedQPolicy(PolicyBase):
    """Greedy on a :class:`RewardModel` fitted from logs: the offered option with the best ``q̂ − λ·ĉ``.

    ``cost_weight`` is the default λ per USD (a driver may set it per decision). A point the logs never saw falls
    back to the cheapest offered option (the reason says so).
    """

    family: ClassVar[str] = "logged"
    kind: ClassVar[str] = "q-linear"

    def __init__(self, features: ObsFeatures, model: RewardModel, *, cost_weight: float = 0.0,
                 name: str = "logged:q-linear", meta: Mapping[str, Any] | None = None) -> None:
        self.features = features
        self.model = model
        self.cost_weight = check_cost_weight(cost_weight)
        self.name = name
        self.version = "1"
        self.meta = dict(meta or {})
        self._points = {k.split(_SEP, 1)[0] for k in model.keys}
        self._options = {k.split(_SEP, 1)[1] for k in model.keys}

    @property
    def options(self) -> tuple[str, ...]:
        """Every option the logs hold, sorted."""
        return tuple(sorted(self._options))

    def bind(self, spec: GraphSpec) -> None:
        """The logged options must exist in the graph."""
        unknown = sorted(self._options - spec.ids())
        if unknown:
            raise ConfigError(f"{self.name}: fitted on option(s) {', '.join(unknown)} that graph "
                              f"{spec.graph!r} lacks", name=unknown[0], hint="fit it on this graph's logs")

    def scores(self, obs: Observation) -> dict[str, float]:
        """``q̂ − λ·ĉ`` of every offered option (the reward to come the model predicts)."""
        lam = decision_cost_weight(obs, self.cost_weight)
        x = self.features.vector(obs)
        keys = [RewardModel.key(obs.point, c.id) for c in obs.candidates]
        q, c = self.model.predict(np.repeat(x[None, :], len(keys), axis=0), keys)
        return {cand.id: float(q[i] - lam * c[i]) for i, cand in enumerate(obs.candidates)}

    def decide(self, obs: Observation) -> Decision:
        """The best predicted option (ties to the cheaper one)."""
        if obs.point not in self._points:
            c = min(obs.candidates, key=lambda c: c.rank)
            return Decision(c.id, one_hot(obs, c.id), reason=f"point {obs.point} not in the logs: cheapest {c.id}")
        s = self.scores(obs)
        best = max(obs.candidates, key=lambda c: (s[c.id], -c.rank))
        return Decision(best.id, one_hot(obs, best.id), reason=f"reward model: {best.id} ({s[best.id]:.4f})",
                        scores=s)

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Features, keys, λ and provenance; the regressions as arrays."""
        return ({"features": self.features.to_dict(), "keys": list(self.model.keys), "cost_weight": self.cost_weight,
                 "policy_name": self.name, "meta": self.meta}, self.model.arrays())

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, *, cost_weight: float | None = None) -> LoggedQPolicy:
        """Restore; ``cost_weight`` overrides the saved λ."""
        model = RewardModel.from_arrays(card.texts("keys"), arrays)
        lam = card.num("cost_weight", 0.0, lo=0.0) if cost_weight is None else cost_weight
        meta = card.obj("meta", None)
        return cls(ObsFeatures.from_card(card.obj("features")), model, cost_weight=lam,
                   name=card.text("policy_name", "logged:q-linear"), meta=None if meta is None else meta.raw())


__all__ = ["LoggedQPolicy", "ObsFeatures", "RewardModel", "fitted_q", "target_values"]
