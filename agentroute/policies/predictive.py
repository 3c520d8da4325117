"""Predictive routers fitted on a routing table: kNN, linear (ridge) and MLP quality predictors, plus baselines.

Each router predicts, for a query, the quality of every option it was fitted on (and the cost, with a per-option
linear model in the query's estimated tokens) and picks ``argmax E[quality] − λ · E[cost] / cost_scale``.
``cost_scale`` is the training table's cost unit (the mean cost of its most expensive option), the same unit the
environments use, so one λ means the same trade-off for every policy; ``obs.extra["cost_weight"]`` overrides the
router's default λ per decision. They are ordinary :class:`~agentroute.policies.base.BasePolicy` objects, so they run
in ``app.run`` as well as in batch (``predict_outcomes`` / ``predict_texts`` for evaluation sweeps).

Every router saves to a directory (``card.json`` + ``arrays.npz``) or to ``NAME.json`` + ``NAME.npz``: a JSON card
(kind, options, λ, data, metrics, seed, featurizer with its version) and plain float arrays. Nothing is pickled;
arrays load with ``allow_pickle=False``. :func:`load_policy` restores any of them (and learned policies).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from agentroute.data.table import estimate_tokens
from agentroute.errors import ConfigError, DataError
from agentroute.features import Featurizer, HashingFeaturizer, featurizer_from_dict
from agentroute.policies._nn import fit_mlp, mlp_forward
from agentroute.policies.base import BasePolicy
from agentroute.routing import Candidate, Decision, Observation, one_hot

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

FORMAT = "agentroute.router/1"
_REGISTRY: dict[str, type[TableRouter]] = {}


def _paths(path: str | Path) -> tuple[Path, Path]:
    """(card .json, arrays .npz) of a policy path: a directory, or a file given with either suffix."""
    p = Path(path)
    if p.suffix in (".json", ".npz"):
        return p.with_suffix(".json"), p.with_suffix(".npz")
    if not p.is_dir() and p.with_name(p.name + ".json").exists():  # NAME -> NAME.json + NAME.npz (learned policies)
        return p.with_name(p.name + ".json"), p.with_name(p.name + ".npz")
    return p / "card.json", p / "arrays.npz"


def _tokens(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([float(estimate_tokens(str(t))) for t in texts], dtype=np.float64)


class CostModel:
    """Per-option cost as ``a + b · input_tokens`` (least squares on the training table, never negative)."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = np.asarray(coef, dtype=np.float64)  # (n_options, 2)

    @classmethod
    def fit(cls, table: RoutingTable) -> CostModel:
        """Fit on a table whose every cost is known."""
        if not table.has_cost:
            raise DataError(
                f"{table.meta.get('source', 'table')}: some costs are unknown (NaN); a router needs them",
                name="cost_usd",
                hint="give the table costs, or prices: `agentroute fit --prices PRICES.json`",
            )
        coef = np.zeros((table.n_options, 2))
        for j in range(table.n_options):
            tok = table.input_tokens[:, j]
            y = table.cost[:, j]
            a = np.stack([np.ones_like(tok), tok], axis=1)
            sol, *_ = np.linalg.lstsq(a, y, rcond=None)
            if sol[1] < 0 or sol[0] < 0:  # no token dependence (or a bad fit): the mean
                sol = np.array([float(y.mean()), 0.0])
            coef[j] = sol
        return cls(coef)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted USD cost ``(n, n_options)``."""
        tok = _tokens(texts)
        out: np.ndarray = np.maximum(self.coef[:, 0][None, :] + tok[:, None] * self.coef[:, 1][None, :], 0.0)
        return out


class TableRouter(BasePolicy):
    """Base of the routers fitted on a routing table: features, cost model, λ, decide, save.

    Subclasses implement ``_fit(x, table)`` and ``_quality(x)``, and list their arrays in ``_arrays()``.
    ``cost_weight`` is the default λ (cost-scale units); ``None`` at fit time means 0.1.
    """

    kind: ClassVar[str] = "router"
    uses_features: ClassVar[bool] = True

    def __init__(
        self, *, featurizer: Featurizer | None = None, cost_weight: float | None = None, seed: int = 0
    ) -> None:
        self.featurizer = featurizer
        self.cost_weight = 0.1 if cost_weight is None else _check_lambda(cost_weight)
        self.seed = int(seed)
        self.options: list[str] = []
        self.cost_model: CostModel | None = None
        self.cost_scale = 1.0
        self.card: dict[str, Any] = {}
        self.name = self.kind
        self.version = "1"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _REGISTRY[cls.kind] = cls

    # ------------------------------------------------------------------ fitting

    def fit(self, table: RoutingTable) -> TableRouter:
        """Fit features, the cost model and the quality model on ``table``; fills the card."""
        if len(table) < 2:
            raise DataError(f"cannot fit a router on {len(table)} queries", name="table")
        t0 = time.perf_counter()
        self.options = list(table.options)
        self.cost_model = CostModel.fit(table)
        self.cost_scale = table.cost_scale()
        x = np.zeros((len(table), 0), dtype=np.float32)
        if self.uses_features:
            if self.featurizer is None or not _is_fitted(self.featurizer):
                self.featurizer = (self.featurizer or HashingFeaturizer(seed=self.seed)).fit(
                    table.texts, table.categories
                )
            x = self.featurizer.transform(table.texts, table.categories)
        metrics = self._fit(x, table) or {}
        self.card = {
            "format": FORMAT,
            "kind": self.kind,
            "options": self.options,
            "cost_weight": self.cost_weight,
            "cost_scale": self.cost_scale,
            "cost_unit": "lambda trades quality against cost / cost_scale (USD)",
            "seed": self.seed,
            "params": self._params(),
            "data": {
                "source": str(table.meta.get("source", "")),
                "n_queries": len(table),
                "meta": {k: v for k, v in table.meta.items() if isinstance(v, str | int | float)},
            },
            "metrics": {**metrics, "fit_seconds": round(time.perf_counter() - t0, 3)},
            "featurizer_version": getattr(self.featurizer, "version", None),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        return self

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any] | None:
        raise NotImplementedError

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> None:
        """Set fitted state from saved arrays and params."""

    # ------------------------------------------------------------------ prediction

    def _check(self) -> None:
        if self.cost_model is None:
            raise ConfigError(f"{self.kind} router is not fitted", name=self.kind, hint="call fit(table) first")

    def features(self, texts: Sequence[str], categories: Sequence[str | None] | None) -> np.ndarray:
        """The router's query features (empty for routers that use none)."""
        if not self.uses_features:
            return np.zeros((len(texts), 0), dtype=np.float32)
        assert self.featurizer is not None
        return self.featurizer.transform(list(texts), categories)

    def predict_outcomes(
        self, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predicted quality, predicted USD cost), each ``(n, n_options)`` in ``self.options`` order."""
        self._check()
        assert self.cost_model is not None
        x = self.features(texts, categories)
        q = np.clip(self._quality(x, texts, categories), 0.0, 1.0)
        return q, self.cost_model.predict(texts)

    def choose(self, q: np.ndarray, c: np.ndarray, cost_weight: float) -> np.ndarray:
        """Index of ``argmax q − λ·c/cost_scale`` per row (ties go to the cheaper option)."""
        s = q - cost_weight * c / self.cost_scale if math.isfinite(cost_weight) else -c
        best = s.max(axis=1, keepdims=True)
        tie = s >= best - 1e-12
        out: np.ndarray = np.where(tie, c, np.inf).argmin(axis=1)
        return out

    def predict_texts(
        self,
        texts: Sequence[str],
        categories: Sequence[str | None] | None = None,
        cost_weight: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(chosen option index per query, probability of every option) at λ = ``cost_weight``."""
        q, c = self.predict_outcomes(texts, categories)
        lam = self.cost_weight if cost_weight is None else float(cost_weight)
        idx = self.choose(q, c, lam)
        probs = np.zeros_like(q)
        probs[np.arange(len(idx)), idx] = 1.0
        return idx, probs

    # ------------------------------------------------------------------ serving

    def _match(self, cand: Candidate) -> int | None:
        for key in (cand.id, cand.descriptor.get("model"), cand.descriptor.get("option")):
            if isinstance(key, str) and key in self._col:
                return self._col[key]
        return None

    @property
    def _col(self) -> dict[str, int]:
        return {o: i for i, o in enumerate(self.options)}

    def decide(self, obs: Observation) -> Decision:
        """Score every candidate the router knows and take the best ``E[q] − λ·E[cost]``."""
        self._check()
        known = [(c, j) for c in obs.candidates if (j := self._match(c)) is not None]
        if not known:
            c0 = min(obs.candidates, key=lambda c: c.rank)
            return Decision(
                c0.id, one_hot(obs, c0.id), reason=f"{self.kind}: no candidate is a fitted option; cheapest"
            )
        lam = obs.extra.get("cost_weight", self.cost_weight)
        lam = self.cost_weight if lam is None else float(lam)
        q, c = self.predict_outcomes([obs.task.text], [obs.task.category])
        cols = np.asarray([j for _, j in known])
        pick = int(self.choose(q[:, cols], c[:, cols], lam)[0])
        chosen = known[pick][0].id
        scale = self.cost_scale
        scores = {cand.id: float(q[0, j] - lam * c[0, j] / scale) for cand, j in known}
        j = int(cols[pick])
        return Decision(
            chosen,
            one_hot(obs, chosen),
            reason=f"{self.kind} at λ={lam:g}: {chosen} has the best E[q] − λ·E[cost] "
            f"({q[0, j]:.2f} − {lam:g}×{c[0, j] / scale:.3f})",
            scores=scores,
            evidence={
                "q_hat": {cand.id: round(float(q[0, jj]), 4) for cand, jj in known},
                "cost_hat": {cand.id: float(c[0, jj]) for cand, jj in known},
                "cost_weight": lam,
            },
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the card and arrays (a directory, or ``NAME.json`` + ``NAME.npz``); returns the card path."""
        self._check()
        assert self.cost_model is not None
        card_path, npz_path = _paths(path)
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card = dict(self.card)
        card.update(
            weights=npz_path.name,
            cost_weight=self.cost_weight,
            featurizer=self.featurizer.to_dict() if self.uses_features and self.featurizer else None,
        )
        arrays = {"cost_coef": self.cost_model.coef, **self._arrays()}
        np.savez(npz_path, **arrays)  # type: ignore[arg-type]
        card_path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        self.card = card
        return card_path

    @classmethod
    def from_card(
        cls, card: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, cost_weight: float | None = None
    ) -> TableRouter:
        """Rebuild a fitted router from its card and arrays."""
        r = cls.__new__(cls)
        TableRouter.__init__(
            r,
            featurizer=featurizer_from_dict(card["featurizer"]) if card.get("featurizer") else None,
            cost_weight=card.get("cost_weight") if cost_weight is None else cost_weight,
            seed=int(card.get("seed", 0)),
        )
        r.options = [str(o) for o in card["options"]]
        r.cost_scale = float(card["cost_scale"])
        r.cost_model = CostModel(arrays["cost_coef"])
        r.card = dict(card)
        r._restore(arrays, card.get("params", {}))
        return r


def _check_lambda(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"cost_weight={v!r} must be a number >= 0", name="cost_weight") from None
    if math.isnan(f) or f < 0:
        raise ConfigError(f"cost_weight={v!r} must be a number >= 0", name="cost_weight")
    return f


def _is_fitted(f: Any) -> bool:
    try:
        _ = f.dim
    except ConfigError:
        return False
    return not (hasattr(f, "fitted") and not f.fitted)


def _holdout(n: int, seed: int, frac: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(n * frac))
    return perm[k:], perm[:k]


# ---------------------------------------------------------------------- routers


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
            tr, va = _holdout(len(x), self.seed)
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

    def _restore(self, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> None:
        self.k, self.shrink = int(params["k"]), float(params["shrink"])
        self.x, self.q = arrays["x"].astype(np.float32), arrays["q"].astype(np.float32)


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

    @staticmethod
    def _solve(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
        mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
        xc = x - mu_x
        gram, rhs = xc.T @ xc, xc.T @ (y - mu_y)
        eye = np.eye(gram.shape[0])
        out = []
        for a in alphas:
            w = np.linalg.solve(gram + a * eye, rhs)  # a Cholesky-backed solve: fast on two cores
            out.append((w, mu_y - mu_x @ w))
        return out

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        x64, y = x.astype(np.float64), table.quality
        metrics: dict[str, Any] = {}
        if self.alpha is None:
            grid = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
            tr, va = _holdout(len(x), self.seed)
            sols = self._solve(x64[tr], y[tr], grid)
            errs = {
                a: float(np.mean((np.clip(x64[va] @ w + b, 0, 1) - y[va]) ** 2))
                for a, (w, b) in zip(grid, sols, strict=True)
            }
            self.alpha = min(errs, key=lambda a: errs[a])
            metrics["holdout_mse_by_alpha"] = {str(a): e for a, e in errs.items()}
        ((self.w, self.b),) = self._solve(x64, y, [float(self.alpha)])
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

    def _restore(self, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> None:
        self.alpha = float(params["alpha"])
        self.w, self.b = arrays["w"].astype(np.float64), arrays["b"].astype(np.float64)


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

    def _restore(self, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> None:
        n = int(params["n_layers"])
        self.layers = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n)]
        for key in ("hidden", "epochs", "batch_size"):
            setattr(self, key, int(params[key]))
        self.lr, self.weight_decay = float(params["lr"]), float(params["weight_decay"])


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

    def _restore(self, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> None:
        self.which, self.option = str(params["which"]), str(params["option"])
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

    def choose(self, q: np.ndarray, c: np.ndarray, cost_weight: float) -> np.ndarray:
        """A uniform draw per row."""
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.seed)
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
        known = [c.id for c in obs.candidates if self._match(c) is not None] or [d.chosen]
        p = 1.0 / len(known)
        return Decision(
            d.chosen,
            {c.id: (p if c.id in known else 0.0) for c in obs.candidates},
            reason=f"random: uniform over {len(known)} options",
            explored=True,
        )


POLICY_NAMES = ("prior", "ensemble", "knn", "linear", "mlp", "bandit", "random", "cheapest", "strongest", "ppo")


def make_router(name: str, *, seed: int = 0, cost_weight: float | None = None, **kw: Any) -> TableRouter:
    """An unfitted router by its ``agentroute fit --policy`` name (all but ``ppo``)."""
    common: dict[str, Any] = {"seed": seed, "cost_weight": cost_weight}
    if name == "knn":
        return KNNRouter(**kw, **common)
    if name == "linear":
        return LinearRouter(**kw, **common)
    if name == "mlp":
        return MLPRouter(**kw, **common)
    if name == "prior":
        from agentroute.policies.prior import PriorRouter

        return PriorRouter(**kw, **common)
    if name == "ensemble":
        from agentroute.policies.ensemble import EnsembleRouter

        return EnsembleRouter(**kw, **common)
    if name in ("cheapest", "strongest"):
        return ConstantRouter(name, **common)
    if name == "random":
        return RandomRouter(**common)
    if name == "bandit":
        from agentroute.policies.bandit import LinUCBPolicy

        return LinUCBPolicy.for_table(**kw, **common)
    raise ConfigError(f"unknown policy {name!r}", name=name, hint=f"use one of {', '.join(POLICY_NAMES)}")


def load_policy(path: str | Path, *, cost_weight: float | None = None) -> Any:
    """Load any saved agentroute policy (predictive, bandit or learned) from its directory or card/arrays file."""
    p = Path(path)
    card_path, npz_path = _paths(p)
    card: dict[str, Any] | None = None
    if card_path.exists():
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{card_path}: cannot read the policy card: {e}", name=str(card_path)) from e
    elif not npz_path.exists() and not p.exists():
        raise DataError(f"{p}: no such policy", name=str(p), hint="fit one with `agentroute fit`")
    kind = card.get("kind") if card else None
    fmt = str(card.get("format", "")) if card else ""
    if card is None or kind == "learned" or fmt.startswith("agentroute.learned"):
        try:
            from agentroute.policies.learned import load_learned
        except ImportError:
            raise DataError(f"{p}: a learned policy, and agentroute.policies.learned is missing", name=str(p)) from None
        kw = {} if cost_weight is None else {"cost_weight": cost_weight}
        return load_learned(card_path if card is not None else npz_path, **kw)
    if fmt != FORMAT:
        raise DataError(f"{card_path}: policy format {fmt!r} is not {FORMAT!r}", name=str(card_path))
    if str(kind).startswith(("linucb", "thompson")):
        importlib.import_module("agentroute.policies.bandit")  # registers the bandit kinds
    if kind in ("prior", "ensemble"):
        importlib.import_module(f"agentroute.policies.{kind}")  # registers PriorRouter / EnsembleRouter
    cls = _REGISTRY.get(str(kind))
    if cls is None:
        raise DataError(
            f"{card_path}: unknown policy kind {kind!r}", name=str(kind), hint=f"known: {sorted(_REGISTRY)}"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{npz_path}: cannot read the policy arrays: {e}", name=str(npz_path)) from e
    return cls.from_card(card, arrays, cost_weight=cost_weight)


__all__ = [
    "FORMAT",
    "POLICY_NAMES",
    "ConstantRouter",
    "CostModel",
    "KNNRouter",
    "LinearRouter",
    "MLPRouter",
    "RandomRouter",
    "TableRouter",
    "load_policy",
    "make_router",
]
