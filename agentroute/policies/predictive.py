"""Predictive routers fitted on a routing table: kNN, linear (ridge) and MLP quality predictors, plus baselines.

Each router predicts, for a query, the quality of every option it was fitted on (and the USD cost, with a per-option
linear model in the query's estimated tokens) and picks ``argmax E[quality] − λ · E[cost]``, λ per USD
(:class:`~agentroute.policies._table.TableRouter` holds what they share: λ, decide, bind, save). They are ordinary
:class:`~agentroute.routing.PolicyBase` policies, so they run in ``app.run`` as well as in batch
(``predict_outcomes`` / ``predict_texts`` for evaluation sweeps). Build one by name with
:func:`agentroute.policies.make_router`; load a saved one with :func:`agentroute.policies.load_policy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, np_rng_from, np_rng_state
from agentroute.policies._nn import check_layers, fit_mlp, mlp_forward
from agentroute.policies._ridge import ridge
from agentroute.policies._table import CostModel, TableRouter, holdout
from agentroute.routing import Decision, Observation

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable


class KNNRouter(TableRouter):
    """Quality as the similarity-weighted mean over the ``k`` nearest training queries (cosine on features).

    ``shrink`` pulls the estimate toward the option's overall mean with that many pseudo-neighbours. With
    ``k=None``, ``fit`` picks k from (5, 10, 20, 40, 80) on a 15% holdout of the training queries.
    """

    kind = "knn"

    def __init__(self, k: int | None = None, *, shrink: float = 1.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.k = k
        self.shrink = float(shrink)
        self.x: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.q: np.ndarray = np.zeros((0, 0), dtype=np.float32)

    @staticmethod
    def _norm(x: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(x, axis=1, keepdims=True)
        out: np.ndarray = (x / np.where(n > 0, n, 1.0)).astype(np.float32)
        return out

    def _predict(self, xq: np.ndarray, xt: np.ndarray, qt: np.ndarray, k: int) -> np.ndarray:
        k = max(1, min(k, len(xt)))
        prior = qt.mean(axis=0)
        out = np.empty((len(xq), qt.shape[1]))
        for s in range(0, len(xq), 512):  # bounded memory: 512 x n_train similarities at a time
            sim = self._norm(xq[s : s + 512]) @ xt.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            w = np.maximum(np.take_along_axis(sim, top, axis=1), 0.0).astype(np.float64) + 1e-6
            num = np.einsum("nk,nko->no", w, qt[top].astype(np.float64)) + self.shrink * prior
            out[s : s + 512] = num / (w.sum(axis=1, keepdims=True) + self.shrink)
        return out

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        xn = self._norm(x)
        q = table.quality.astype(np.float32)
        metrics: dict[str, Any] = {}
        if self.k is None:
            tr, va = holdout(len(x), self.seed)
            errs = {}
            for k in (5, 10, 20, 40, 80):
                p = self._predict(xn[va], xn[tr], q[tr], k)
                errs[k] = float(np.mean((p - q[va]) ** 2))
            self.k = min(errs, key=lambda k: errs[k])
            metrics["holdout_mse_by_k"] = errs
        self.x, self.q = xn, q
        return {**metrics, "k": self.k}

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        return self._predict(x, self.x.astype(np.float32), self.q, int(self.k or 20))

    def _params(self) -> dict[str, Any]:
        return {"k": self.k, "shrink": self.shrink}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x.astype(np.float16), "q": self.q}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.k, self.shrink = params.whole("k", lo=1), params.num("shrink", lo=0.0)
        k = len(self.options)
        self.q = arrays.get("q", shape=(None, k), dtype=np.float32)
        d = self.featurizer.dim if self.featurizer is not None else None
        self.x = arrays.get("x", shape=(len(self.q), d), dtype=np.float32)


class LinearRouter(TableRouter):
    """Ridge regression of every option's quality on the features (one shared solve).

    With ``alpha=None``, ``fit`` picks the ridge penalty from (0.1, 0.3, 1, 3, 10, 30) on a 15% holdout.
    """

    kind = "linear"

    def __init__(self, alpha: float | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.alpha = alpha
        self.w: np.ndarray = np.zeros((0, 0))
        self.b: np.ndarray = np.zeros(0)

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        x64, y = x.astype(np.float64), table.quality
        metrics: dict[str, Any] = {}
        if self.alpha is None:
            grid = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
            tr, va = holdout(len(x), self.seed)
            sols = ridge(x64[tr], y[tr], grid)
            errs = {
                a: float(np.mean((np.clip(x64[va] @ w + b, 0, 1) - y[va]) ** 2))
                for a, (w, b) in zip(grid, sols, strict=True)
            }
            self.alpha = min(errs, key=lambda a: errs[a])
            metrics["holdout_mse_by_alpha"] = {str(a): e for a, e in errs.items()}
        ((self.w, self.b),) = ridge(x64, y, [float(self.alpha)])
        return {**metrics, "alpha": self.alpha}

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        out: np.ndarray = x.astype(np.float64) @ self.w + self.b
        return out

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w.astype(np.float32), "b": self.b}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.alpha = params.num("alpha", lo=0.0)
        k = len(self.options)
        d = self.featurizer.dim if self.featurizer is not None else None
        self.w = arrays.get("w", shape=(d, k), dtype=np.float64)
        self.b = arrays.get("b", shape=(k,), dtype=np.float64)


class MLPRouter(TableRouter):
    """A small numpy MLP (one hidden ReLU layer, sigmoid outputs, cross-entropy, Adam) for every option at once.

    Training stops early on a 15% holdout of the training queries and keeps the best epoch.
    """

    kind = "mlp"

    def __init__(
        self,
        hidden: int = 128,
        *,
        epochs: int = 60,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.hidden, self.epochs, self.lr = int(hidden), int(epochs), float(lr)
        self.weight_decay, self.batch_size = float(weight_decay), int(batch_size)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        self.layers, info = fit_mlp(
            x,
            table.quality,
            hidden=self.hidden,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        return info

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        return mlp_forward(self.layers, x)

    def _params(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "epochs": self.epochs,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "n_layers": len(self.layers),
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, (w, b) in enumerate(self.layers):
            out[f"w{i}"], out[f"b{i}"] = w.astype(np.float32), b.astype(np.float32)
        return out

    def _restore(self, arrays: Arrays, params: Card) -> None:
        n = params.whole("n_layers", lo=1, hi=64)
        self.layers = [(arrays.get(f"w{i}", ndim=2, dtype=np.float32), arrays.get(f"b{i}", ndim=1, dtype=np.float32))
                       for i in range(n)]
        try:
            check_layers(self.layers)
        except ValueError as e:
            raise params.error("n_layers", f"does not describe the saved layers: {e}") from None
        d = self.featurizer.dim if self.featurizer is not None else None
        if (d is not None and self.layers[0][0].shape[0] != d) or self.layers[-1][0].shape[1] != len(self.options):
            raise params.error("n_layers", "the saved layers do not map the features to one output per option")
        for key in ("hidden", "epochs", "batch_size"):
            setattr(self, key, params.whole(key, lo=1, hi=2**31))
        self.lr, self.weight_decay = params.num("lr", lo=0.0), params.num("weight_decay", lo=0.0)


class ConstantRouter(TableRouter):
    """Always one option, chosen at fit: ``which="cheapest"`` (lowest mean cost) or ``"strongest"`` (best quality)."""

    kind = "constant"
    uses_features = False

    def __init__(self, which: str = "cheapest", **kw: Any) -> None:
        super().__init__(**kw)
        if which not in ("cheapest", "strongest"):
            raise ConfigError(f"ConstantRouter: which={which!r}", name="which", hint="cheapest or strongest")
        self.which = which
        self.option = ""
        self.name = which

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        cost, qual = table.cost.mean(axis=0), table.quality.mean(axis=0)
        j = int(np.lexsort((-qual, cost))[0]) if self.which == "cheapest" else int(np.lexsort((cost, -qual))[0])
        self.option = table.options[j]
        return {"option": self.option, "mean_quality": float(qual[j]), "mean_cost": float(cost[j])}

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        q = np.zeros((len(texts), len(self.options)))
        q[:, self.options.index(self.option)] = 1.0
        return q

    def choose(self, q: np.ndarray, c: np.ndarray, cost_weight: float) -> np.ndarray:
        """The fixed option wherever it is offered (decide narrows the columns to the candidates)."""
        out: np.ndarray = q.argmax(axis=1)
        return out

    def _params(self) -> dict[str, Any]:
        return {"which": self.which, "option": self.option}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.which = params.text("which", choices=("cheapest", "strongest"))
        self.option = params.text("option", choices=tuple(self.options))
        self.name = self.which


class RandomRouter(TableRouter):
    """Uniformly random over the fitted options (a floor for every frontier); ``seed`` makes it reproducible."""

    kind = "random"
    uses_features = False

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._rng = np.random.default_rng(self.seed)

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        return {}

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        return np.full((len(texts), len(self.options)), 0.5)

    def _params(self) -> dict[str, Any]:
        return {"rng": np_rng_state(self._rng)}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self._rng = np_rng_from(params, "rng", self.seed)

    def choose(self, q: np.ndarray, c: np.ndarray, cost_weight: float) -> np.ndarray:
        """A uniform draw per row."""
        out: np.ndarray = np.asarray(self._rng.integers(0, q.shape[1], size=q.shape[0]))
        return out

    def predict_texts(
        self,
        texts: Sequence[str],
        categories: Sequence[str | None] | None = None,
        cost_weight: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A uniform draw per query; every option has probability 1/k."""
        idx, _ = super().predict_texts(texts, categories, cost_weight)
        return idx, np.full((len(texts), len(self.options)), 1.0 / len(self.options))

    def decide(self, obs: Observation) -> Decision:
        """Uniform over the candidates it knows (propensity 1/k), marked as exploration."""
        d = super().decide(obs)
        if obs.kind != "model":
            return d
        known = [c.id for c in obs.candidates if self._match(c) is not None] or [d.chosen]
        p = 1.0 / len(known)
        return Decision(
            d.chosen,
            {c.id: (p if c.id in known else 0.0) for c in obs.candidates},
            reason=f"random: uniform over {len(known)} options",
            explored=True,
        )


__all__ = [
    "ConstantRouter",
    "CostModel",
    "KNNRouter",
    "LinearRouter",
    "MLPRouter",
    "RandomRouter",
    "TableRouter",
]
