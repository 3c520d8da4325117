"""The plain reference router every table is measured against: TF-IDF + one logistic regression per option.

What a careful engineer would build first, with no knowledge of agentroute: word 1-2-gram TF-IDF of the query text
(sublinear tf, fitted on the train split) and, per option, a logistic regression of its quality (fractional outcomes
enter as two weighted rows, ``q`` as a success and ``1 − q`` as a failure). It routes by ``argmax p̂ − λ·ĉ`` with
agentroute's per-option cost model, so it is swept, hulled and scored exactly like agentroute's routers. It never
reads the category. scikit-learn when installed (``TfidfVectorizer`` + ``LogisticRegression(C=1)``); otherwise the
same model in numpy (hashing TF-IDF of :mod:`agentroute.features`, L2-penalised gradient descent).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute.policies._table import TableRouter

C = 1.0
"""Inverse L2 penalty of each logistic regression (scikit-learn's default)."""


class TfidfLogRegRouter(TableRouter):
    """TF-IDF (word 1-2 grams) + per-option logistic regression; the benchmark's reference, not a shipped family."""

    kind = "tfidf-lr"
    uses_features = False  # its own vectoriser, not agentroute's featurizer

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._vec: Any = None
        self._models: list[Any] = []
        self._np_w: np.ndarray | None = None
        self.backend = "sklearn" if importlib.util.find_spec("sklearn") is not None else "numpy"

    def _fit(self, x: np.ndarray, table: Any) -> dict[str, Any]:
        texts = list(table.texts)
        q = np.clip(np.asarray(table.quality, dtype=np.float64), 0.0, 1.0)
        if self.backend == "sklearn":
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression

            self._vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=100_000)
            xs = self._vec.fit_transform(texts)
            from scipy import sparse

            xx = sparse.vstack([xs, xs])
            for j in range(q.shape[1]):
                y = np.r_[np.ones(len(texts)), np.zeros(len(texts))]
                w = np.r_[q[:, j], 1.0 - q[:, j]]
                if q[:, j].min() == q[:, j].max():  # one class only: a constant
                    self._models.append(float(q[0, j]))
                    continue
                m = LogisticRegression(C=C, max_iter=2000, random_state=self.seed)
                self._models.append(m.fit(xx, y, sample_weight=w))
        else:
            from agentroute.features import HashingFeaturizer

            self._vec = HashingFeaturizer(2**12, use_category=False, seed=self.seed).fit(texts)
            xd = self._design(texts)
            self._np_w = np.stack([_gd_logreg(xd, q[:, j], 1.0 / C) for j in range(q.shape[1])], axis=1)
        return {"backend": self.backend}

    def _design(self, texts: Sequence[str]) -> np.ndarray:
        x = self._vec.transform(list(texts))[:, : self._vec.n_features].astype(np.float64)
        out: np.ndarray = np.hstack([x, np.ones((len(x), 1))])
        return out

    def _quality(self, x: np.ndarray, texts: Sequence[str], categories: Sequence[str | None] | None = None
                 ) -> np.ndarray:
        if self.backend == "sklearn":
            xs = self._vec.transform(list(texts))
            cols = [np.full(len(texts), m) if isinstance(m, float) else m.predict_proba(xs)[:, 1]
                    for m in self._models]
            return np.stack(cols, axis=1)
        assert self._np_w is not None
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(self._design(texts) @ self._np_w)))
        return out


def _gd_logreg(x: np.ndarray, q: np.ndarray, l2: float, iters: int = 300) -> np.ndarray:
    """Weights of an L2-penalised logistic regression of fractional targets ``q`` (full-batch gradient descent)."""
    n, d = x.shape
    w = np.zeros(d)
    # 1/L of the mean logistic loss, L <= ||x||_2^2 / (4n) + l2/n; the Frobenius norm bounds the spectral one cheaply
    lr = 1.0 / (float(np.einsum("ij,ij->", x, x)) / (4 * n) + l2 / n)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        w -= lr * (x.T @ (p - q) / n + l2 / n * w)
    return w


__all__ = ["TfidfLogRegRouter"]
