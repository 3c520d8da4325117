"""The base of every router fitted on a routing table: features, a cost model, λ, decide, bind, save.

A table router predicts, for a query, the quality and the USD cost of every option it was fitted on and picks
``argmax E[quality] − λ · E[cost]``, λ per USD (its ``cost_weight``, or ``obs.extra["cost_weight"]`` per decision).
``cost_scale`` (the mean cost of the training table's priciest option) is kept as the table's cost unit: the default
λ is 0.1 per cost unit, and the bandits learn costs in that unit. In a graph a router scores the model tiers it
knows: a tier named after a fitted option, or whose model is one (:meth:`TableRouter.bind` refuses a graph with a
tier it cannot map, at compile time). At agent and memory points it defers to the graph's declared default.

Saved through :func:`agentroute.policies.save_policy`: a card (family, kind, options, λ per USD, cost scale, seed,
params, featurizer, data, metrics) and the arrays (cost model and the family's own).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from agentroute.data.table import estimate_tokens
from agentroute.errors import ConfigError, DataError
from agentroute.features import Featurizer, HashingFeaturizer, featurizer_from_dict
from agentroute.policies._card import Arrays, Card, register, save_policy
from agentroute.policies._cost import check_cost_weight, decision_cost_weight
from agentroute.policies.baselines import DeclaredDefault
from agentroute.routing import Candidate, Decision, GraphSpec, Observation, PolicyBase, one_hot

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

_CARD_KEYS = ("data", "metrics", "featurizer_version", "created", "calibration")
"""What a router's ``card`` dict carries onto its saved card (``calibration``: :func:`calibrate`)."""
DEFAULT_COST_UNITS = 0.1
"""The default λ: 0.1 per cost unit of the training table (stored per USD: ``0.1 / cost_scale``)."""


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


class TableRouter(PolicyBase):
    """Base of the routers fitted on a routing table: features, cost model, λ, decide, bind, save.

    Subclasses implement ``_fit(x, table)`` and ``_quality(x)``, list their arrays in ``_arrays()`` and restore
    them in ``_restore``. ``cost_weight`` is the default λ per USD; ``None`` means 0.1 per cost unit of the
    training table (:data:`DEFAULT_COST_UNITS`).
    """

    family: ClassVar[str] = "predictive"
    kind: ClassVar[str] = "router"
    uses_features: ClassVar[bool] = True
    dense_features: ClassVar[bool] = True
    """``False``: the router reads its (fitted) featurizer itself, e.g. sparse TF-IDF rows; ``fit`` passes no matrix."""

    def __init__(
        self, *, featurizer: Featurizer | None = None, cost_weight: float | None = None, seed: int = 0
    ) -> None:
        self.featurizer = featurizer
        self._lam: float | None = None if cost_weight is None else check_cost_weight(cost_weight)
        self.seed = int(seed)
        self.options: list[str] = []
        self.cost_model: CostModel | None = None
        self.cost_scale = 1.0
        self.card: dict[str, Any] = {}
        self.name = self.kind
        self.version = "1"
        self._default = DeclaredDefault()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        register(cls.family, cls.kind)(cls)

    @property
    def cost_weight(self) -> float:
        """The default λ per USD (0.1 per cost unit of the training table unless set)."""
        return DEFAULT_COST_UNITS / self.cost_scale if self._lam is None else self._lam

    @cost_weight.setter
    def cost_weight(self, value: float | None) -> None:
        self._lam = None if value is None else check_cost_weight(value)

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
            if self.dense_features:
                x = self.featurizer.transform(table.texts, table.categories)
        metrics = self._fit(x, table) or {}
        self.card = {
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

    def _restore(self, arrays: Arrays, params: Card) -> None:
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
        """Index of ``argmax q − λ·c`` per row, λ per USD and ``c`` in USD (ties go to the cheaper option)."""
        s = q - cost_weight * c if math.isfinite(cost_weight) else -c
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
        """(chosen option index per query, probability of every option) at λ = ``cost_weight`` per USD."""
        q, c = self.predict_outcomes(texts, categories)
        lam = self.cost_weight if cost_weight is None else check_cost_weight(cost_weight)
        idx = self.choose(q, c, lam)
        probs = np.zeros_like(q)
        probs[np.arange(len(idx)), idx] = 1.0
        return idx, probs

    # ------------------------------------------------------------------ serving

    def _match(self, cand: Candidate) -> int | None:
        col = self._col
        for key in (cand.id, cand.descriptor.get("model"), cand.descriptor.get("option")):
            if isinstance(key, str) and key in col:
                return col[key]
        return None

    @property
    def _col(self) -> dict[str, int]:
        return {o: i for i, o in enumerate(self.options)}

    def bind(self, spec: GraphSpec) -> None:
        """Refuse a graph with a model tier that is not a fitted option, by name or by its model's name.

        Without this check such a router would route every decision of that tier's agent to the cheapest tier.
        """
        self._check()
        bind_options(self.kind, self.options, spec)

    def _defer(self, obs: Observation, why: str) -> Decision:
        if obs.kind != "model":
            d = self._default.decide(obs)
            return Decision(d.chosen, d.probabilities, reason=f"{self.kind}: not a model point; {d.reason}")
        c0 = min(obs.candidates, key=lambda c: c.rank)
        return Decision(c0.id, one_hot(obs, c0.id), reason=f"{self.kind}: {why}; cheapest")

    def decide(self, obs: Observation) -> Decision:
        """Score every candidate the router knows and take the best ``E[q] − λ·E[cost]`` (λ per USD)."""
        self._check()
        known = [(c, j) for c in obs.candidates if (j := self._match(c)) is not None]
        if not known or obs.kind != "model":
            return self._defer(obs, "no candidate is a fitted option")
        lam = decision_cost_weight(obs, self.cost_weight)
        q, c = self.predict_outcomes([obs.task.text], [obs.task.category])
        cols = np.asarray([j for _, j in known])
        pick = int(self.choose(q[:, cols], c[:, cols], lam)[0])
        chosen = known[pick][0].id
        scores = {cand.id: float(q[0, j] - lam * c[0, j]) for cand, j in known}
        j = int(cols[pick])
        return Decision(
            chosen,
            one_hot(obs, chosen),
            reason=f"{self.kind} at λ={lam:g}/USD: {chosen} has the best E[q] − λ·E[cost] "
            f"({q[0, j]:.2f} − {lam:g}×{c[0, j]:.3g})",
            scores=scores,
            evidence={
                "q_hat": {cand.id: round(float(q[0, jj]), 4) for cand, jj in known},
                "cost_hat": {cand.id: float(c[0, jj]) for cand, jj in known},
                "cost_weight": lam,
            },
        )

    # ------------------------------------------------------------------ persistence

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Card fields and arrays (see :func:`agentroute.policies.save_policy`)."""
        self._check()
        assert self.cost_model is not None
        card = {
            **{k: v for k, v in self.card.items() if k in _CARD_KEYS},
            "options": list(self.options),
            "cost_unit": "usd",
            "cost_weight": self.cost_weight,
            "cost_scale": self.cost_scale,
            "seed": self.seed,
            "params": self._params(),
            "featurizer": self.featurizer.to_dict() if self.uses_features and self.featurizer else None,
        }
        return card, {"cost_coef": self.cost_model.coef, **self._arrays()}

    def save(self, path: str | Path) -> Path:
        """Write the card and arrays (a directory, or ``NAME.json`` + ``NAME.npz``); returns the card path."""
        return save_policy(self, path)

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, *, cost_weight: float | None = None) -> TableRouter:
        """Rebuild a fitted router from its card and arrays (``cost_weight`` overrides the saved λ per USD)."""
        r = cls.__new__(cls)
        TableRouter.__init__(
            r,
            featurizer=card.build("featurizer", featurizer_from_dict, None),
            cost_weight=card.num("cost_weight", lo=0.0, finite=False) if cost_weight is None else cost_weight,
            seed=card.whole("seed", 0, lo=0, hi=2**63),
        )
        if cls.uses_features and r.featurizer is None:
            raise card.error("featurizer", "is missing: this router reads query features")
        r.options = card.texts("options", unique=True, nonempty=True)
        r.cost_scale = card.num("cost_scale", lo=1e-300)
        r.cost_model = CostModel(arrays.get("cost_coef", shape=(len(r.options), 2), dtype=np.float64))
        r.card = {k: card[k] for k in _CARD_KEYS if k in card}
        r._restore(arrays, card.obj("params", Card({}, card.source, "params.")))
        return r


def bind_options(kind: str, options: Sequence[str], spec: GraphSpec) -> None:
    """Raise :class:`ConfigError` unless every model tier of ``spec`` is one of ``options`` (by name or model)."""
    known = set(options)
    if not spec.tiers:
        raise ConfigError(
            f"a {kind} router routes model tiers, and graph {spec.graph!r} has none",
            name=kind, hint=f"its options: {', '.join(options)}",
        )
    unknown = [t for t in spec.tiers if t not in known and spec.models.get(t) not in known]
    if unknown:
        models = {t: spec.models[t] for t in unknown if t in spec.models}
        via = f" (models: {', '.join(f'{t}={m}' for t, m in models.items())})" if models else ""
        raise ConfigError(
            f"{kind} router was fitted on options {', '.join(options)}; tier(s) {', '.join(unknown)} of graph "
            f"{spec.graph!r}{via} are none of them, so it could never route to them",
            name=unknown[0],
            hint="name each tier after a fitted option, or give it a model that is one (a tier whose model is a "
            "fitted option is routed as that option)",
        )


def _is_fitted(f: Any) -> bool:
    try:
        _ = f.dim
    except ConfigError:
        return False
    return not (hasattr(f, "fitted") and not f.fitted)


def holdout(n: int, seed: int, frac: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: a seeded ``frac`` holdout."""
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(n * frac))
    return perm[k:], perm[:k]


__all__ = ["DEFAULT_COST_UNITS", "CostModel", "TableRouter", "bind_options", "holdout"]
