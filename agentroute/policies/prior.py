"""A category-prior router: shrunk per-category quality of every option, plus a ridge on the text residual.

On the three public routing tables, most of what a query's text tells a router about which model will be right is
its task or subject: a per-(category, option) mean quality, shrunk toward the option's overall mean, predicts held-out
outcomes as well as kNN or ridge on hashed n-grams, and the n-grams add little on top. :class:`PriorRouter` makes that
explicit and lets the data decide the rest:

    q̂(x, o) = prior[category(x), o] + x · W[:, o] + b[o]

``prior[c, o] = (Σ_{i∈c} q_io + s · q̄_o) / (n_c + s)`` (``s`` pseudo-queries of shrinkage) and ``W`` is a ridge
regression of the residual ``q − prior`` on the query features. A new (or missing) category backs off to the text:
the similarity-weighted mixture of the known categories' priors, ``m(x)``, and a thin category is shrunk toward
``m(x)`` rather than toward ``q̄_o`` (:mod:`agentroute.policies._backoff`; its sharpness β is chosen by
cross-validation over held-out whole categories, β = 0 being the overall mean). ``s``
and the ridge penalty (including "no residual at all") are chosen by K-fold cross-validation **inside the training
table**, on the routing objective itself: the area under the cost–quality hull (AIQ) of the out-of-fold predictions
swept over λ; among the settings whose AIQ is within noise of the best (half a standard error), the lowest squared
error wins. The test split is never seen. Inference is one lookup and one
matrix-vector product; arrays save as plain floats (no pickle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies import _backoff
from agentroute.policies._card import Arrays, Card
from agentroute.policies._frontier import aiq, breakeven_weights, upper_hull
from agentroute.policies._ridge import Ridge
from agentroute.policies._table import TableRouter

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

SHRINK_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
ALPHA_GRID = (30.0, 100.0, 300.0, 1000.0, math.inf)  # inf: the prior alone
_CV_BREAKEVEN = 150  # break-even λ per inner-CV sweep: enough to rank candidates, cheap enough for a grid


def category_prior(
    cats: Sequence[str | None], y: np.ndarray, shrink: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(categories, their shrunk mean quality ``(n_cats, n_options)``, the overall mean ``(n_options,)``)."""
    g = y.mean(axis=0)
    names = sorted({str(c) for c in cats if c is not None})
    col = np.asarray([str(c) if c is not None else "" for c in cats], dtype=object)
    table = np.empty((len(names), y.shape[1]))
    for i, c in enumerate(names):
        m = col == c
        table[i] = (y[m].sum(axis=0) + shrink * g) / (m.sum() + shrink)
    return names, table, g


def lookup(names: Sequence[str], table: np.ndarray, overall: np.ndarray, cats: Sequence[str | None]) -> np.ndarray:
    """The prior row of every query's category (the overall mean where unseen or missing)."""
    index = {c: i for i, c in enumerate(names)}
    rows = np.asarray([index.get(str(c), -1) if c is not None else -1 for c in cats], dtype=np.int64)
    full = np.vstack([table, overall[None, :]]) if len(names) else overall[None, :]
    out: np.ndarray = full[np.where(rows < 0, len(full) - 1, rows)]
    return out


def _hull_aiq(cost: np.ndarray, qual: np.ndarray, c_lo: float, c_hi: float) -> float:
    return float(aiq(upper_hull(cost, qual), c_lo, c_hi))


def aiq_tolerance(y: np.ndarray) -> float:
    """AIQ differences below this are noise for model selection: half the standard error of a mean outcome.

    Out-of-fold AIQs of neighbouring hyper-parameters often differ in the fourth decimal; picking the top one then
    chases noise. Selection keeps every setting within this tolerance of the best and takes the lowest squared
    error among them (a one-standard-error rule, as in glmnet's ``lambda.1se``).
    """
    q = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return 0.5 * float(np.sqrt(np.mean(q.var(axis=0)) / max(len(q), 1)))


def select_best(scores: Mapping[Any, tuple[float, float]], tol: float) -> Any:
    """The key of the lowest squared error among the ``(aiq, mse)`` scores within ``tol`` of the best AIQ."""
    top = max(a for a, _ in scores.values())
    near = [k for k, (a, _) in scores.items() if a >= top - tol]
    return min(near, key=lambda k: (scores[k][1], -scores[k][0]))


def routed_aiq(router: TableRouter, table: RoutingTable, q_hat: np.ndarray, c_hat: np.ndarray) -> float:
    """AIQ on ``table`` of routing by predictions ``q_hat`` / ``c_hat`` (the inner-CV objective of the routers).

    The λ sweep is the fixed grid plus the predictions' own break-even points (as in
    :func:`agentroute.evaluation.sweep`), so model selection sees the frontier the evaluation will measure.
    """
    rows = np.arange(len(table))
    c_opt = table.cost.mean(axis=0)
    scale = router.cost_scale
    lams = breakeven_weights(q_hat, c_hat, scale, n=_CV_BREAKEVEN)  # per cost unit; choose() takes λ per USD
    pts = [router.choose(q_hat, c_hat, lam / scale) for lam in lams]
    cost = np.asarray([table.cost[rows, i].mean() for i in pts])
    qual = np.asarray([table.quality[rows, i].mean() for i in pts])
    return _hull_aiq(cost, qual, float(c_opt.min()), float(c_opt.max()))


class PriorRouter(TableRouter):
    """Shrunk per-category quality priors plus a ridge on the text residual, both chosen by inner CV.

    ``shrink`` / ``alpha`` fix the shrinkage (pseudo-queries) and the ridge penalty (``math.inf``: no residual);
    left ``None``, ``fit`` picks them by ``folds``-fold cross-validation on the training table: the lowest squared
    error among the settings within :func:`aiq_tolerance` of the best out-of-fold AIQ.
    """

    kind = "prior"

    def __init__(
        self, shrink: float | None = None, alpha: float | None = None, *, folds: int = 3, backoff: bool = True,
        **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.backoff = bool(backoff)
        """Back off to the text for new and thin categories (β chosen by category-held-out CV); ``False``: the
        overall mean, as before."""
        self.beta = 0.0
        self.centroids = np.zeros((0, 0))
        self.counts = np.zeros(0)
        if folds < 2:
            raise ConfigError(f"PriorRouter: folds must be >= 2, got {folds}", name="folds")
        self.shrink, self.alpha, self.folds = shrink, alpha, int(folds)
        self.categories: list[str] = []
        self.prior = np.zeros((0, 0))
        self.overall = np.zeros(0)
        self.w = np.zeros((0, 0))
        self.b = np.zeros(0)

    def _select(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        """Out-of-fold AIQ and MSE of every (shrink, alpha) pair; sets the best."""
        y, cats = table.quality, list(table.categories)
        assert self.cost_model is not None
        c_hat = self.cost_model.predict(table.texts)
        shrinks = SHRINK_GRID if self.shrink is None else (float(self.shrink),)
        alphas = ALPHA_GRID if self.alpha is None else (float(self.alpha),)
        fold = np.random.default_rng(self.seed).permutation(len(y)) % self.folds
        oof = {(s, a): np.zeros_like(y) for s in shrinks for a in alphas}
        for k in range(self.folds):
            te, tr = fold == k, fold != k
            ctr = [cats[i] for i in np.flatnonzero(tr)]
            cte = [cats[i] for i in np.flatnonzero(te)]
            ridge = Ridge(x[tr]) if any(math.isfinite(a) for a in alphas) else None
            priors = []
            for s in shrinks:
                names, tab, g = category_prior(ctr, y[tr], s)
                priors.append((lookup(names, tab, g, ctr), lookup(names, tab, g, cte)))
            resid = np.hstack([y[tr] - p_tr for p_tr, _ in priors])  # one solve serves every shrinkage
            k_opt = y.shape[1]
            for a in alphas:
                fitted = ridge.weights(resid, a) if ridge is not None and math.isfinite(a) else None
                for i, s in enumerate(shrinks):
                    pred = priors[i][1]
                    if fitted is not None:
                        w, b = fitted
                        sl = slice(i * k_opt, (i + 1) * k_opt)
                        pred = pred + x[te] @ w[:, sl] + b[sl]
                    oof[(s, a)][te] = np.clip(pred, 0.0, 1.0)
        scores: dict[tuple[float, float], tuple[float, float]] = {}
        for key, q in oof.items():
            scores[key] = (routed_aiq(self, table, q, c_hat), float(np.mean((q - y) ** 2)))
        tol = aiq_tolerance(y)
        best = select_best(scores, tol)
        self.shrink, self.alpha = best
        return {
            "cv_folds": self.folds,
            "cv_aiq": {f"s={s:g},alpha={a:g}": round(v[0], 5) for (s, a), v in scores.items()},
            "cv_best_aiq": scores[best][0],
            "cv_aiq_tolerance": tol,
            "cv_best_mse": scores[best][1],
        }

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        x64 = x.astype(np.float64)
        metrics: dict[str, Any] = {}
        if self.shrink is None or self.alpha is None:
            metrics = self._select(x64, table)
        assert self.shrink is not None and self.alpha is not None
        cats = list(table.categories)
        self.categories, self.prior, self.overall = category_prior(cats, table.quality, self.shrink)
        d, k = x64.shape[1], table.n_options
        self.w, self.b = np.zeros((d, k)), np.zeros(k)
        if math.isfinite(self.alpha):
            resid = table.quality - lookup(self.categories, self.prior, self.overall, cats)
            self.w, self.b = Ridge(x64).weights(resid, self.alpha)
        self.beta, self.centroids = 0.0, np.zeros((len(self.categories), 0))
        col = np.asarray([str(c) if c is not None else "\0" for c in cats], dtype=object)
        self.counts = np.asarray([float((col == c).sum()) for c in self.categories])
        if self.backoff and len(self.categories) >= 3:
            t = self._text(x64)
            assert self.cost_model is not None
            c_hat = self.cost_model.predict(table.texts)
            tol = aiq_tolerance(table.quality)

            def score(rows: np.ndarray, q: np.ndarray) -> tuple[float, float]:
                return routed_aiq(self, table, q, c_hat), float(np.mean((q - table.quality) ** 2))

            self.beta, cv = _backoff.select_beta(t, table.quality, cats, self.shrink, self.seed, score,
                                                 category_prior, lambda sc: select_best(sc, tol))
            self.centroids = _backoff.centroids(t, cats, self.categories)
            metrics["backoff_cv_aiq"] = {f"beta={b:g}": v for b, v in cv.items()}
        return {**metrics, "shrink": self.shrink, "alpha": self.alpha, "n_categories": len(self.categories),
                "backoff_beta": self.beta}

    def _text(self, x: np.ndarray) -> np.ndarray:
        cats = list(getattr(self.featurizer, "categories", []) or [])
        return _backoff.text_block(x, len(cats), bool(cats))

    def _backed_off(self, x: np.ndarray, cats: Sequence[str | None], out: np.ndarray) -> np.ndarray:
        """``out`` with new categories at ``m(x)`` and every known one shrunk toward ``m(x)`` instead of the mean."""
        if self.beta <= 0 or self.centroids.shape[1] == 0:
            return out
        m = _backoff.mixture(self._text(x), self.centroids, self.prior, self.overall, self.beta)
        index = {c: i for i, c in enumerate(self.categories)}
        rows = np.asarray([index.get(str(c), -1) if c is not None else -1 for c in cats], dtype=np.int64)
        known = rows >= 0
        res = np.where(known[:, None], out, m)
        if known.any():
            assert self.shrink is not None
            n = self.counts[rows[known]][:, None]
            res[known] = out[known] + self.shrink / (n + self.shrink) * (m[known] - self.overall)
        return res

    def predict_with_categories(self, x: np.ndarray, categories: Sequence[str | None] | None) -> np.ndarray:
        """Predicted quality ``(n, n_options)`` from features and categories."""
        cats: Sequence[str | None] = list(categories) if categories is not None else [None] * len(x)
        out: np.ndarray = self._backed_off(x, cats, lookup(self.categories, self.prior, self.overall, cats))
        if math.isfinite(float(self.alpha or math.inf)):
            out = out + x.astype(np.float64) @ self.w + self.b
        return out

    def _quality(
        self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> np.ndarray:
        return self.predict_with_categories(x, categories)

    def _params(self) -> dict[str, Any]:
        return {
            "shrink": self.shrink,
            "alpha": "inf" if self.alpha is not None and math.isinf(self.alpha) else self.alpha,
            "folds": self.folds,
            "categories": self.categories,
            "backoff": self.backoff,
            "beta": self.beta,
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"prior": self.prior, "overall": self.overall, "w": self.w.astype(np.float32), "b": self.b,
                "centroids": self.centroids.astype(np.float32), "counts": self.counts}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.shrink = params.num("shrink", lo=0.0)
        self.alpha = params.num("alpha", lo=0.0, finite=False)
        self.folds = params.whole("folds", lo=2)
        self.categories = params.texts("categories", unique=True)
        k = len(self.options)
        d = self.featurizer.dim if self.featurizer is not None else None
        self.prior = arrays.get("prior", shape=(len(self.categories), k), dtype=np.float64)
        self.overall = arrays.get("overall", shape=(k,), dtype=np.float64)
        self.w = arrays.get("w", shape=(d, k), dtype=np.float64)
        self.b = arrays.get("b", shape=(k,), dtype=np.float64)
        self.backoff = params.flag("backoff", False)  # a card from before the backoff routes as it did
        self.beta = params.num("beta", 0.0, lo=0.0)
        n = len(self.categories)
        self.centroids = arrays.get("centroids", np.zeros((n, 0)), ndim=2, dtype=np.float64)
        self.counts = arrays.get("counts", np.zeros(n), shape=(n,), dtype=np.float64)
        if self.centroids.shape[0] != n or (self.beta > 0 and self.centroids.shape[1] == 0):
            raise params.error("beta", f"needs centroids of shape ({n}, d), got {self.centroids.shape}")


__all__ = ["PriorRouter", "aiq_tolerance", "category_prior", "lookup", "routed_aiq", "select_best"]
