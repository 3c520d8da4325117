"""A word-level text router: exact-vocabulary TF-IDF, a kernel ridge per option, stacked with the category prior.

:class:`TextRouter` reads its queries through :class:`~agentroute._tfidf.TfidfFeaturizer` (every word 1-2-gram of
the training queries a column of its own, no hashing) and predicts every option's quality in three parts:

* ``t(x)``: ridge regression of the outcomes on the sparse TF-IDF rows (penalty ``alpha``), solved in the dual
  (one ``n × n`` Gram of the training queries, computed sparse, serves every penalty and every fold);
* ``p(c)``: the per-category prior of :mod:`~agentroute.policies.prior` (``shrink`` pseudo-queries toward the
  option's mean);
* the stack ``q̂ = w · t(x) + (1 − w) · p(c)`` for a known category; for a new one the text alone, ``t'(x)``, a
  ridge with the penalty ``alpha_new`` that served the text alone best in the cross-validation (a category prior
  knows nothing about a new category, the text does); then a per-option affine **calibration** ``a_o + b_o · q̂``
  fitted by least squares on the out-of-fold predictions (ridge shrinks its estimates toward the mean; routing
  compares them with prices, so their scale matters).

``alpha``, ``shrink`` and ``w`` are chosen by K-fold cross-validation **inside the training table** on the routing
objective (out-of-fold AIQ, then the lowest squared error among the settings within noise of the best, as
:class:`~agentroute.policies.prior.PriorRouter` does). The test split is never seen. The card keeps the featurizer
(vocabulary and IDF), the primal weights ``W`` ``(n_terms, k)``, the prior table and the calibration; no pickle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from agentroute._tfidf import SparseRows, TfidfFeaturizer, sparse_gram
from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card
from agentroute.policies._table import TableRouter
from agentroute.policies.prior import aiq_tolerance, category_prior, lookup, routed_aiq, select_best

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

ALPHA_GRID = (1.0, 3.0, 10.0, 30.0)
"""Ridge penalties tried (rows are unit-norm TF-IDF vectors)."""
SHRINK_GRID = (3.0, 10.0, 30.0)
WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Weight of the text model in the stack (0: the category prior alone, 1: the text alone)."""


def _centered(k: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The Gram block ``(x_r − μ)·(x_c − μ)`` with ``μ`` the mean of the ``cols`` rows (the training fold)."""
    kc = k[np.ix_(cols, cols)]
    r_cols = kc.mean(axis=1)
    g = float(r_cols.mean())
    r_rows = k[np.ix_(rows, cols)].mean(axis=1)
    out: np.ndarray = k[np.ix_(rows, cols)] - r_rows[:, None] - r_cols[None, :] + g
    return out


def _cg(kc: np.ndarray, yc: np.ndarray, alpha: float, start: np.ndarray | None = None, *, tol: float = 1e-7,
        max_iter: int = 1000) -> np.ndarray:
    """``(Kc + αI)⁻¹ yc`` column by column by conjugate gradients (the system is symmetric positive definite).

    A dense solve costs ``n³``; each iteration here costs ``n²·k``, and a few dozen to a few hundred iterations
    reach ``tol`` (relative residual) for the penalties of :data:`ALPHA_GRID`; ``start`` warm-starts it.
    """
    a = np.zeros_like(yc) if start is None else start.copy()
    r = yc - (kc @ a + alpha * a)
    p = r.copy()
    rr = (r * r).sum(axis=0)
    stop = tol**2 * np.maximum((yc * yc).sum(axis=0), 1e-300)
    for _ in range(max_iter):
        if (rr <= stop).all():
            break
        kp = kc @ p + alpha * p
        step = rr / np.maximum((p * kp).sum(axis=0), 1e-300)
        a += step * p
        r -= step * kp
        rr_new = (r * r).sum(axis=0)
        p = r + (rr_new / np.maximum(rr, 1e-300)) * p
        rr = rr_new
    return a


def _dual(kc: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Dual coefficients ``(n, k)`` of the centred ridge per penalty (largest first, each warm-starting the next)."""
    yc = y - y.mean(axis=0)
    out: dict[float, np.ndarray] = {}
    prev = None
    for a in sorted(set(alphas), reverse=True):
        prev = out[a] = _cg(kc, yc, a, prev)
    return [out[a] for a in alphas]


class TextRouter(TableRouter):
    """Kernel ridge on exact-vocabulary TF-IDF, stacked with a category prior, calibrated; chosen by inner CV.

    ``alpha`` (ridge penalty), ``shrink`` (prior pseudo-queries) and ``weight`` (of the text in the stack) are
    fixed when given, else chosen by ``folds``-fold cross-validation on the training table. ``calibrate=False``
    skips the per-option affine calibration. The featurizer defaults to :class:`TfidfFeaturizer`.
    """

    kind = "text"
    dense_features: ClassVar[bool] = False

    def __init__(
        self, alpha: float | None = None, shrink: float | None = None, weight: float | None = None, *,
        folds: int = 3, calibrate: bool = True, **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if folds < 2:
            raise ConfigError(f"TextRouter: folds must be >= 2, got {folds}", name="folds")
        if weight is not None and not 0.0 <= weight <= 1.0:
            raise ConfigError(f"TextRouter: weight must be in [0, 1], got {weight}", name="weight")
        self.alpha, self.shrink, self.weight = alpha, shrink, weight
        self.folds, self.calibrate = int(folds), bool(calibrate)
        self.categories: list[str] = []
        self.prior = np.zeros((0, 0))
        self.overall = np.zeros(0)
        self.w = np.zeros((0, 0))
        self.b = np.zeros(0)
        self.alpha_new: float | None = None
        self.w_new = np.zeros((0, 0))
        self.b_new = np.zeros(0)
        self.cal = np.zeros((0, 2))
        self._oof: np.ndarray | None = None

    def _tfidf(self) -> TfidfFeaturizer:
        if not isinstance(self.featurizer, TfidfFeaturizer):
            raise ConfigError(
                f"the text router reads the tfidf featurizer, got {type(self.featurizer).__name__}",
                name="featurizer", hint="leave the featurizer unset, or pass TfidfFeaturizer()",
            )
        return self.featurizer

    def fit(self, table: RoutingTable) -> TextRouter:
        """Fit the TF-IDF vocabulary (unless given fitted), then the cost, text, prior and calibration models."""
        if self.featurizer is None:
            self.featurizer = TfidfFeaturizer()
        super().fit(table)
        return self

    # ------------------------------------------------------------------ fitting

    def _stack(self, t: np.ndarray, p: np.ndarray, known: np.ndarray, w: float) -> np.ndarray:
        out: np.ndarray = np.where(known[:, None], w * t + (1.0 - w) * p, t)
        return out

    def _select(self, k: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        y, cats = table.quality, list(table.categories)
        n = len(y)
        alphas = ALPHA_GRID if self.alpha is None else (float(self.alpha),)
        shrinks = SHRINK_GRID if self.shrink is None else (float(self.shrink),)
        weights = WEIGHT_GRID if self.weight is None else (float(self.weight),)
        fold = np.random.default_rng(self.seed).permutation(n) % self.folds
        t_oof = {a: np.zeros_like(y) for a in alphas}
        p_oof = {s: np.zeros_like(y) for s in shrinks}
        known = np.zeros(n, dtype=bool)
        for f in range(self.folds):
            te, tr = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            kc = _centered(k, tr, tr)
            cross = _centered(k, te, tr)
            for a, dual in zip(alphas, _dual(kc, y[tr], alphas), strict=True):
                t_oof[a][te] = cross @ dual + y[tr].mean(axis=0)
            ctr, cte = [cats[i] for i in tr], [cats[i] for i in te]
            names = {str(c) for c in ctr if c is not None}
            known[te] = [c is not None and str(c) in names for c in cte]
            for s in shrinks:
                nm, tab, g = category_prior(ctr, y[tr], s)
                p_oof[s][te] = lookup(nm, tab, g, cte)
        assert self.cost_model is not None
        c_hat = self.cost_model.predict(table.texts)
        scores: dict[tuple[float, float, float], tuple[float, float]] = {}
        for a in alphas:
            for s in shrinks:
                for w in weights:
                    q = np.clip(self._stack(t_oof[a], p_oof[s], known, w), 0.0, 1.0)
                    scores[(a, s, w)] = (routed_aiq(self, table, q, c_hat), float(np.mean((q - y) ** 2)))
        tol = aiq_tolerance(y)
        best = select_best(scores, tol)
        self.alpha, self.shrink, self.weight = best
        text_only = {a: scores[(a, shrinks[0], 1.0)] for a in alphas} if 1.0 in weights else {}
        self.alpha_new = select_best(text_only, tol) if text_only else self.alpha
        self._oof = self._stack(t_oof[best[0]], p_oof[best[1]], known, best[2])
        return {"cv_folds": self.folds, "cv_best_aiq": scores[best][0], "cv_best_mse": scores[best][1],
                "cv_text_only_aiq": max(v[0] for (a, s, w), v in scores.items() if w == 1.0) if 1.0 in weights
                else None}

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        feats = self._tfidf()
        xs = feats.transform_sparse(table.texts)
        k = sparse_gram(xs)
        y = table.quality
        self._oof = None
        metrics = self._select(k, table) if None in (self.alpha, self.shrink, self.weight) else {}
        assert self.alpha is not None and self.shrink is not None and self.weight is not None
        rows = np.arange(len(y))
        if self.alpha_new is None:
            self.alpha_new = self.alpha
        duals = _dual(_centered(k, rows, rows), y, [self.alpha, self.alpha_new])
        mu = xs.col_sums() / len(y)
        (self.w, self.b), (self.w_new, self.b_new) = [
            (w, y.mean(axis=0) - mu @ w) for w in (xs.tdot(d) - np.outer(mu, d.sum(axis=0)) for d in duals)
        ]
        self.categories, self.prior, self.overall = category_prior(list(table.categories), y, self.shrink)
        self.cal = np.tile([0.0, 1.0], (y.shape[1], 1))
        oof = self._oof
        if self.calibrate and oof is not None:
            for j in range(y.shape[1]):
                a = np.stack([np.ones(len(y)), oof[:, j]], axis=1)
                sol, *_ = np.linalg.lstsq(a, y[:, j], rcond=None)
                if sol[1] > 0:  # a calibration that reverses the ranking is noise: keep the identity
                    self.cal[j] = sol
        self._oof = None
        return {**metrics, "alpha": self.alpha, "alpha_new": self.alpha_new, "shrink": self.shrink,
                "weight": self.weight, "n_terms": feats.n_terms, "calibration": self.cal.round(4).tolist()}

    # ------------------------------------------------------------------ prediction

    def features(self, texts: Sequence[str], categories: Sequence[str | None] | None) -> np.ndarray:
        """No dense features: the text router reads sparse TF-IDF rows from the texts in ``_quality``."""
        return np.zeros((len(texts), 0), dtype=np.float32)

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        xs: SparseRows = self._tfidf().transform_sparse(texts)
        cats: Sequence[str | None] = list(categories) if categories is not None else [None] * len(texts)
        index = set(self.categories)
        known = np.asarray([c is not None and str(c) in index for c in cats], dtype=bool)
        t = np.where(known[:, None], xs.dot(self.w) + self.b, xs.dot(self.w_new) + self.b_new)
        p = lookup(self.categories, self.prior, self.overall, cats)
        q = self._stack(t, p, known, float(self.weight if self.weight is not None else 1.0))
        out: np.ndarray = self.cal[:, 0] + self.cal[:, 1] * q
        return out

    # ------------------------------------------------------------------ persistence

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "alpha_new": self.alpha_new, "shrink": self.shrink, "weight": self.weight,
                "folds": self.folds, "calibrate": self.calibrate, "categories": self.categories}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w.astype(np.float32), "b": self.b, "w_new": self.w_new.astype(np.float32),
                "b_new": self.b_new, "prior": self.prior, "overall": self.overall,
                "cal": self.cal}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        if not isinstance(self.featurizer, TfidfFeaturizer):
            raise params.error("alpha", "a text router needs a tfidf featurizer in its card")
        self.alpha = params.num("alpha", lo=0.0)
        self.alpha_new = params.num("alpha_new", lo=0.0)
        self.shrink = params.num("shrink", lo=0.0)
        self.weight = params.num("weight", lo=0.0, hi=1.0)
        self.folds = params.whole("folds", lo=2)
        self.calibrate = params.flag("calibrate", True)
        self.categories = params.texts("categories", unique=True)
        k = len(self.options)
        self.w = arrays.get("w", shape=(self.featurizer.n_terms, k), dtype=np.float64)
        self.b = arrays.get("b", shape=(k,), dtype=np.float64)
        self.w_new = arrays.get("w_new", shape=(self.featurizer.n_terms, k), dtype=np.float64)
        self.b_new = arrays.get("b_new", shape=(k,), dtype=np.float64)
        self.prior = arrays.get("prior", shape=(len(self.categories), k), dtype=np.float64)
        self.overall = arrays.get("overall", shape=(k,), dtype=np.float64)
        self.cal = arrays.get("cal", shape=(k, 2), dtype=np.float64)
        if not math.isfinite(float(self.cal.sum())):
            raise params.error("calibrate", "the saved calibration is not finite")


__all__ = ["TextRouter"]
