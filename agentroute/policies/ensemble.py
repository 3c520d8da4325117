"""A stacked router: a convex blend of the predictive routers' quality estimates, weighted by inner CV.

The category prior, kNN and ridge routers make different mistakes (a shrunk per-category mean, a local vote, a
global linear fit). :class:`EnsembleRouter` predicts ``q̂ = Σ_m w_m · clip(q̂_m)`` with ``w`` on the simplex
(multiples of ``step``), chosen on the routing objective itself: the AIQ of the **out-of-fold** blended
predictions of a ``folds``-fold split of the training table (among blends within noise of the best AIQ, the lowest
squared error; see :func:`~agentroute.policies.prior.select_best`). Each member first fits on the
whole training table (selecting its own hyper-parameters on its own inner holdout); the out-of-fold predictions
then refit it per fold with those hyper-parameters fixed. The test split is never seen.

Members share the ensemble's featurizer and its one feature matrix (features are computed once per query, which
matters with the sentence-embedding featurizer). Only members with a non-zero weight are kept and saved; their
arrays go into the ensemble's ``.npz`` under ``m{i}/{name}`` and their parameters into the card (no pickle).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card
from agentroute.policies._table import TableRouter
from agentroute.policies.predictive import KNNRouter, LinearRouter, MLPRouter
from agentroute.policies.prior import PriorRouter, aiq_tolerance, routed_aiq, select_best

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

DEFAULT_MEMBERS = ("prior", "knn", "linear")
_MEMBERS: dict[str, type[TableRouter]] = {"prior": PriorRouter, "knn": KNNRouter, "linear": LinearRouter,
                                          "mlp": MLPRouter}
_MEMBER_KINDS = tuple(_MEMBERS)


def _simplex(m: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of length ``m`` on the simplex whose entries are multiples of ``step``."""
    units = round(1.0 / step)
    return [tuple(u / units for u in w) for w in itertools.product(range(units + 1), repeat=m) if sum(w) == units]


class EnsembleRouter(TableRouter):
    """Convex blend of member routers' predicted quality, weights chosen by out-of-fold AIQ on the training table.

    ``members`` names predictive routers (``prior``, ``knn``, ``linear``, ``mlp``); ``weights`` fixes the blend
    (else ``fit`` searches the simplex in multiples of ``step`` with ``folds``-fold cross-validation).
    """

    kind = "ensemble"

    def __init__(
        self,
        members: Sequence[str] = DEFAULT_MEMBERS,
        *,
        weights: Sequence[float] | None = None,
        folds: int = 3,
        step: float = 0.25,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        bad = [m for m in members if m not in _MEMBER_KINDS]
        if not members or bad:
            raise ConfigError(
                f"EnsembleRouter: unknown member(s) {bad or members}", name="members", hint=f"use {_MEMBER_KINDS}"
            )
        if folds < 2:
            raise ConfigError(f"EnsembleRouter: folds must be >= 2, got {folds}", name="folds")
        if not 0 < step <= 1 or abs(round(1 / step) * step - 1) > 1e-9:
            raise ConfigError(f"EnsembleRouter: step={step} must divide 1", name="step")
        if weights is not None and (len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0):
            raise ConfigError("EnsembleRouter: weights must be >= 0, one per member, not all 0", name="weights")
        self.member_kinds = [str(m) for m in members]
        self.weights = None if weights is None else [float(w) / sum(weights) for w in weights]
        self.folds, self.step = int(folds), float(step)
        self.members: list[TableRouter] = []

    # ------------------------------------------------------------------ fitting

    def _member(self, kind: str, table: RoutingTable, params: Mapping[str, Any] | None = None) -> TableRouter:
        """An unfitted member sharing this router's cost model and scale (``params`` fixes its hyper-parameters)."""
        r = _MEMBERS[kind](seed=self.seed, **dict(params or {}))
        r.options, r.cost_model, r.cost_scale = list(table.options), self.cost_model, self.cost_scale
        r.featurizer = self.featurizer
        return r

    @staticmethod
    def _fixed(r: TableRouter) -> dict[str, Any]:
        """The hyper-parameters a member selected, to refit it per fold without selecting again."""
        if r.kind == "prior":
            return {"shrink": getattr(r, "shrink"), "alpha": getattr(r, "alpha")}  # noqa: B009
        if r.kind == "knn":
            return {"k": getattr(r, "k"), "shrink": getattr(r, "shrink")}  # noqa: B009
        if r.kind == "linear":
            return {"alpha": getattr(r, "alpha")}  # noqa: B009
        return {}

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        cats, texts = list(table.categories), list(table.texts)
        full = []
        for kind in self.member_kinds:
            r = self._member(kind, table)
            r._fit(x, table)
            full.append(r)
        metrics: dict[str, Any] = {}
        if self.weights is None:
            y = table.quality
            fold = np.random.default_rng(self.seed).permutation(len(y)) % self.folds
            oof = [np.zeros_like(y) for _ in full]
            for k in range(self.folds):
                tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
                sub = table.subset(tr)
                for m, r in enumerate(full):
                    rk = self._member(r.kind, sub, self._fixed(r))
                    rk._fit(x[tr], sub)
                    pred = rk._quality(x[te], [texts[i] for i in te], [cats[i] for i in te])
                    oof[m][te] = np.clip(pred, 0.0, 1.0)
            assert self.cost_model is not None
            c_hat = self.cost_model.predict(texts)
            scores: dict[tuple[float, ...], tuple[float, float]] = {}
            for w in _simplex(len(full), self.step):
                q = sum(wi * p for wi, p in zip(w, oof, strict=True))
                assert isinstance(q, np.ndarray)
                scores[w] = (routed_aiq(self, table, q, c_hat), float(np.mean((q - y) ** 2)))
            best = select_best(scores, aiq_tolerance(y))
            self.weights = list(best)
            metrics = {
                "cv_folds": self.folds,
                "cv_member_aiq": {
                    kind: round(scores[tuple(float(i == m) for i in range(len(full)))][0], 5)
                    for m, kind in enumerate(self.member_kinds)
                },
                "cv_best_aiq": round(scores[best][0], 5),
            }
        keep = [m for m, w in enumerate(self.weights) if w > 0]
        self.member_kinds = [self.member_kinds[m] for m in keep]
        self.weights = [self.weights[m] for m in keep]
        self.members = [full[m] for m in keep]
        return {**metrics, "members": self.member_kinds, "weights": self.weights}

    # ------------------------------------------------------------------ prediction

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        assert self.weights is not None
        out = np.zeros((len(texts), len(self.options)))
        for w, r in zip(self.weights, self.members, strict=True):
            out += w * np.clip(r._quality(x, texts, categories), 0.0, 1.0)
        return out

    # ------------------------------------------------------------------ persistence

    def _params(self) -> dict[str, Any]:
        return {
            "members": self.member_kinds,
            "weights": self.weights,
            "folds": self.folds,
            "step": self.step,
            "member_params": [r._params() for r in self.members],
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for m, r in enumerate(self.members):
            for name, a in r._arrays().items():
                out[f"m{m}/{name}"] = a
        return out

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.member_kinds = params.texts("members", nonempty=True)
        bad = [k for k in self.member_kinds if k not in _MEMBERS]
        if bad:
            raise params.error("members", f"names unknown member kind(s) {bad}", hint=f"use {_MEMBER_KINDS}")
        self.weights = params.nums("weights", length=len(self.member_kinds), lo=0.0)
        self.folds, self.step = params.whole("folds", lo=2), params.num("step", lo=1e-9, hi=1.0)
        member_params = params.get("member_params")
        if not isinstance(member_params, list) or len(member_params) != len(self.member_kinds):
            raise params.error("member_params", "must list one object per member")
        self.members = []
        for m, (kind, mp) in enumerate(zip(self.member_kinds, member_params, strict=True)):
            cls = _MEMBERS[kind]
            r = cls.__new__(cls)
            TableRouter.__init__(r, featurizer=self.featurizer, cost_weight=self.cost_weight, seed=self.seed)
            r.options, r.cost_model, r.cost_scale = list(self.options), self.cost_model, self.cost_scale
            r._restore(arrays.sub(f"m{m}"), Card(mp, params.source, f"{params.prefix}member_params.{m}."))
            self.members.append(r)


__all__ = ["DEFAULT_MEMBERS", "EnsembleRouter"]
