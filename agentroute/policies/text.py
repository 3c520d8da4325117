"""A word-level text router: exact-vocabulary TF-IDF, a kernel ridge per option, stacked with the category prior.

:class:`TextRouter` reads its queries through :class:`~agentroute._tfidf.TfidfFeaturizer` (every word 1-2-gram of
the training queries a column of its own, no hashing) and predicts every option's quality in three parts:

* ``t(x)``: per option, a logistic regression of the outcomes on the sparse TF-IDF rows (``link="logistic"``, the
  default: L2 penalty ``alpha = 1/C``, fitted by L-BFGS in :mod:`~agentroute.policies._logistic`), or a ridge
  regression (``link="ridge"``: penalty ``alpha``, solved in the dual, one ``n × n`` Gram of the training queries
  serving every penalty and every fold). On 0/1 outcomes the logistic link ranks queries better (on RouteLLM's
  MMLU pairs, held-out subjects: +0.003 AIQ over the ridge, the same as the plain TF-IDF + logistic reference);
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
from agentroute.policies._logistic import fit_logistic, predict_logistic
from agentroute.policies._table import TableRouter
from agentroute.policies.prior import aiq_tolerance, category_prior, lookup, routed_aiq, select_best

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

ALPHA_GRID = (1.0, 3.0, 10.0, 30.0)
"""Ridge penalties tried (rows are unit-norm TF-IDF vectors)."""
LOGISTIC_ALPHA_GRID = (0.1, 0.3, 1.0)
"""Logistic penalties tried, ``1/C`` (C = 10, 3.3, 1; scikit-learn's default is C = 1)."""
LINKS = ("logistic", "ridge")
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


def _category_folds(cats: Sequence[str | None], folds: int, seed: int) -> np.ndarray | None:
    """A fold per query that holds whole categories out, or ``None`` with fewer than ``2 · folds`` categories.

    Categories are shuffled, then the largest first go into the smallest fold.
    """
    col = [str(c) if c is not None else "" for c in cats]
    names = sorted(set(col))
    if len(names) < 2 * folds:
        return None
    sizes = {c: col.count(c) for c in names}
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    order.sort(key=lambda c: -sizes[c])  # stable: ties keep the shuffled order
    load, where = [0] * folds, {}
    for c in order:
        f = int(np.argmin(load))
        where[c], load[f] = f, load[f] + sizes[c]
    return np.asarray([where[c] for c in col], dtype=np.int64)


def _calibration(y: np.ndarray, oof: np.ndarray | None) -> np.ndarray:
    """Per option ``(a, b)`` of ``a + b · q̂`` by least squares on out-of-fold predictions (identity without)."""
    cal = np.tile([0.0, 1.0], (y.shape[1], 1))
    if oof is None:
        return cal
    for j in range(y.shape[1]):
        a = np.stack([np.ones(len(y)), oof[:, j]], axis=1)
        sol, *_ = np.linalg.lstsq(a, y[:, j], rcond=None)
        if sol[1] > 0:  # a calibration that reverses the ranking is noise: keep the identity
            cal[j] = sol
    return cal


class TextRouter(TableRouter):
    """Kernel ridge on exact-vocabulary TF-IDF, stacked with a category prior, calibrated; chosen by inner CV.

    ``alpha`` (the text model's penalty: ridge α, or ``1/C`` for the logistic link), ``shrink`` (prior
    pseudo-queries) and ``weight`` (of the text in the stack) are fixed when given, else chosen by
    ``folds``-fold cross-validation on the training table. ``link`` is ``"logistic"`` (default) or ``"ridge"``.
    ``calibrate=False`` skips the per-option affine calibration. The featurizer defaults to
    :class:`TfidfFeaturizer`.
    """

    kind = "text"
    dense_features: ClassVar[bool] = False

    def __init__(
        self, alpha: float | None = None, shrink: float | None = None, weight: float | None = None, *,
        folds: int = 3, calibrate: bool = True, link: str = "logistic", **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if link not in LINKS:
            raise ConfigError(f"TextRouter: link must be one of {LINKS}, got {link!r}", name="link")
        self.link = link
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
        self.cal_new = np.zeros((0, 2))
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

    def _text_oof(self, xs: SparseRows, y: np.ndarray, fold: np.ndarray, alphas: Sequence[float]
                  ) -> dict[float, np.ndarray]:
        """Out-of-fold text predictions per penalty."""
        t_oof = {a: np.zeros_like(y) for a in alphas}
        k = sparse_gram(xs) if self.link == "ridge" else None
        for f in range(self.folds):
            te, tr = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
            if k is not None:
                cross = _centered(k, te, tr)
                for a, dual in zip(alphas, _dual(_centered(k, tr, tr), y[tr], alphas), strict=True):
                    t_oof[a][te] = cross @ dual + y[tr].mean(axis=0)
                continue
            x_tr, x_te = xs.take(tr), xs.take(te)
            start = None
            for a in sorted(alphas, reverse=True):  # strongest penalty first, each warm-starting the next
                start = fit_logistic(x_tr, y[tr], 1.0 / a, start)
                t_oof[a][te] = predict_logistic(x_te, *start)
        return t_oof

    def _select(self, xs: SparseRows, table: RoutingTable) -> dict[str, Any]:
        y, cats = table.quality, list(table.categories)
        n = len(y)
        grid = ALPHA_GRID if self.link == "ridge" else LOGISTIC_ALPHA_GRID
        alphas = grid if self.alpha is None else (float(self.alpha),)
        shrinks = SHRINK_GRID if self.shrink is None else (float(self.shrink),)
        weights = WEIGHT_GRID if self.weight is None else (float(self.weight),)
        fold = np.random.default_rng(self.seed).permutation(n) % self.folds
        t_oof = self._text_oof(xs, y, fold, alphas)
        p_oof = {s: np.zeros_like(y) for s in shrinks}
        known = np.zeros(n, dtype=bool)
        for f in range(self.folds):
            te, tr = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
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
        self._oof = self._stack(t_oof[best[0]], p_oof[best[1]], known, best[2])
        # the model for new categories is judged on categories its folds never saw (whole categories held out)
        groups = _category_folds(cats, self.folds, self.seed)
        t_new = self._text_oof(xs, y, groups, alphas) if groups is not None else t_oof
        text_only = {a: (routed_aiq(self, table, np.clip(t_new[a], 0.0, 1.0), c_hat),
                         float(np.mean((t_new[a] - y) ** 2))) for a in alphas}
        self.alpha_new = select_best(text_only, tol)
        return {"cv_folds": self.folds, "cv_best_aiq": scores[best][0], "cv_best_mse": scores[best][1],
                "cv_new_category_folds": groups is not None,
                "cv_text_only_aiq": text_only[self.alpha_new][0]}

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        feats = self._tfidf()
        xs = feats.transform_sparse(table.texts)
        y = table.quality
        self._oof = None
        metrics = self._select(xs, table) if None in (self.alpha, self.shrink, self.weight) else {}
        assert self.alpha is not None and self.shrink is not None and self.weight is not None
        if self.alpha_new is None:
            self.alpha_new = self.alpha
        if self.link == "ridge":
            rows = np.arange(len(y))
            k = sparse_gram(xs)
            duals = _dual(_centered(k, rows, rows), y, [self.alpha, self.alpha_new])
            mu = xs.col_sums() / len(y)
            (self.w, self.b), (self.w_new, self.b_new) = [
                (w, y.mean(axis=0) - mu @ w) for w in (xs.tdot(d) - np.outer(mu, d.sum(axis=0)) for d in duals)
            ]
        else:
            self.w, self.b = fit_logistic(xs, y, 1.0 / self.alpha)
            self.w_new, self.b_new = (self.w, self.b) if self.alpha_new == self.alpha else fit_logistic(
                xs, y, 1.0 / self.alpha_new, (self.w, self.b))
        self.categories, self.prior, self.overall = category_prior(list(table.categories), y, self.shrink)
        self.cal = _calibration(y, self._oof if self.calibrate else None)
        # new categories: a logistic is calibrated by its own loss; an affine fit on category-held-out predictions
        # shrinks each option's slope by how well the text transfers, which reorders the options (routellm, held-out
        # subjects: −0.007 AIQ, −0.09 APGR), so it is left out; the ridge keeps the known categories' calibration
        self.cal_new = self.cal.copy() if self.link == "ridge" else _calibration(y, None)
        self._oof = None
        return {**metrics, "link": self.link, "alpha": self.alpha, "alpha_new": self.alpha_new, "shrink": self.shrink,
                "weight": self.weight, "n_terms": feats.n_terms, "calibration": self.cal.round(4).tolist(),
                "calibration_new": self.cal_new.round(4).tolist()}

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
        if self.link == "logistic":
            t = 0.5 * (1.0 + np.tanh(0.5 * t))
        p = lookup(self.categories, self.prior, self.overall, cats)
        q = self._stack(t, p, known, float(self.weight if self.weight is not None else 1.0))
        cal = np.where(known[:, None, None], self.cal[None], self.cal_new[None])
        out: np.ndarray = cal[:, :, 0] + cal[:, :, 1] * q
        return out

    # ------------------------------------------------------------------ persistence

    def _params(self) -> dict[str, Any]:
        return {"link": self.link, "alpha": self.alpha, "alpha_new": self.alpha_new, "shrink": self.shrink,
                "weight": self.weight, "folds": self.folds, "calibrate": self.calibrate, "categories": self.categories}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w.astype(np.float32), "b": self.b, "w_new": self.w_new.astype(np.float32),
                "b_new": self.b_new, "prior": self.prior, "overall": self.overall,
                "cal": self.cal, "cal_new": self.cal_new}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        if not isinstance(self.featurizer, TfidfFeaturizer):
            raise params.error("alpha", "a text router needs a tfidf featurizer in its card")
        self.link = params.text("link", "ridge", choices=LINKS)  # a card from before the logistic link: ridge
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
        self.cal_new = arrays.get("cal_new", self.cal, shape=(k, 2), dtype=np.float64)  # older cards: one
        if not math.isfinite(float(self.cal.sum() + self.cal_new.sum())):
            raise params.error("calibrate", "the saved calibration is not finite")


__all__ = ["TextRouter"]
