"""Exact-vocabulary TF-IDF: word n-grams counted against a fitted vocabulary, as sparse rows, in numpy alone.

:class:`TfidfFeaturizer` is the sparse counterpart of :class:`~agentroute.features.HashingFeaturizer`: every word
1-2-gram seen in at least ``min_df`` training queries gets a column of its own (the ``max_features`` most frequent),
weighted by sublinear term frequency and smoothed IDF, each row L2-normalised; then the standardised log length and
the one-hot category, like the hashing featurizer. No two n-grams share a column (hashing folds thousands of rare
n-grams into each bucket), which is what a plain TF-IDF + logistic-regression router has over hashed features on the
public routing tables. Tokens are runs of two or more word characters, lower-cased (scikit-learn's default pattern),
so the vocabulary matches the reference router's.

:class:`SparseRows` is a minimal CSR matrix (``indptr``, ``indices``, ``data``) with the products a ridge solver
needs (``X·W``, ``Xᵀ·R``, the Gram ``X·Xᵀ``); :func:`sparse_gram` computes the Gram without scipy: the few
frequent columns by one dense product, the many rare ones by enumerating the pairs of rows that share them.

The fitted state (vocabulary in column order, IDF as base64 float32, categories, length statistics) serialises to a
JSON-safe dict; no pickle. This module imports nothing from agentroute but its errors.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute._arrays import decode_array, encode_array, length_and_category
from agentroute.errors import ConfigError

TFIDF_VERSION = "tfidf-1"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_DENSE_LIMIT = 50_000_000
"""Most floats a dense ``transform`` may allocate; more is refused with a hint (use ``transform_sparse``)."""


class SparseRows:
    """Rows of a sparse matrix in CSR form: ``indptr`` ``(n+1,)``, ``indices`` and ``data`` ``(nnz,)``, ``n_cols``."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.data = np.asarray(data, dtype=np.float64)
        self.n_cols = int(n_cols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return len(self.indptr) - 1, self.n_cols

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def _row_ids(self) -> np.ndarray:
        out: np.ndarray = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        return out

    def take(self, rows: np.ndarray | Sequence[int]) -> SparseRows:
        """The rows ``rows`` (indices or a boolean mask), in that order."""
        r = np.asarray(rows)
        if r.dtype == bool:
            r = np.flatnonzero(r)
        starts, ends = self.indptr[r], self.indptr[r + 1]
        lens = ends - starts
        indptr = np.concatenate([[0], np.cumsum(lens)])
        pos = np.repeat(starts - indptr[:-1], lens) + np.arange(int(indptr[-1]))
        return SparseRows(indptr, self.indices[pos], self.data[pos], self.n_cols)

    def dot(self, w: np.ndarray) -> np.ndarray:
        """``X · w`` for ``w`` of shape ``(n_cols, k)`` (or ``(n_cols,)``)."""
        w = np.asarray(w, dtype=np.float64)
        flat = w.ndim == 1
        w2 = w.reshape(self.n_cols, -1)
        rows = self._row_ids()
        out = np.stack(
            [np.bincount(rows, weights=self.data * w2[self.indices, j], minlength=len(self))
             for j in range(w2.shape[1])],
            axis=1,
        ) if w2.shape[1] else np.zeros((len(self), 0))
        return out[:, 0] if flat else out

    def tdot(self, r: np.ndarray) -> np.ndarray:
        """``Xᵀ · r`` for ``r`` of shape ``(n_rows, k)``."""
        r2 = np.asarray(r, dtype=np.float64).reshape(len(self), -1)
        rows = self._row_ids()
        out: np.ndarray = np.stack(
            [np.bincount(self.indices, weights=self.data * r2[rows, j], minlength=self.n_cols)
             for j in range(r2.shape[1])],
            axis=1,
        ) if r2.shape[1] else np.zeros((self.n_cols, 0))
        return out

    def col_sums(self) -> np.ndarray:
        """Column sums ``(n_cols,)``."""
        out: np.ndarray = np.bincount(self.indices, weights=self.data, minlength=self.n_cols)
        return out

    def to_dense(self) -> np.ndarray:
        """A dense float64 copy (refused over :data:`_DENSE_LIMIT` floats)."""
        n, d = self.shape
        if n * d > _DENSE_LIMIT:
            raise ConfigError(
                f"a dense {n} x {d} TF-IDF matrix is too large", name="featurizer",
                hint="routers that read sparse rows ('text') take the tfidf featurizer; others take 'hashing'",
            )
        out = np.zeros((n, d))
        out[self._row_ids(), self.indices] = self.data
        return out


def sparse_gram(x: SparseRows, *, dense_share: float = 0.02) -> np.ndarray:
    """``X · Xᵀ`` ``(n, n)`` without scipy.

    Columns present in more than ``dense_share`` of the rows go through one dense product; every other column
    contributes the products of the pairs of rows it holds, enumerated in groups of columns of equal frequency.
    """
    n, d = x.shape
    rows = x._row_ids()
    df = np.bincount(x.indices, minlength=d)
    common = df > max(2, int(dense_share * n))
    gram = np.zeros((n, n))
    cols = np.flatnonzero(common)
    if len(cols):
        where = np.full(d, -1)
        where[cols] = np.arange(len(cols))
        m = common[x.indices]
        dense = np.zeros((n, len(cols)))
        dense[rows[m], where[x.indices[m]]] = x.data[m]
        gram += dense @ dense.T
    rare = ~common[x.indices]
    if rare.any():
        order = np.argsort(x.indices[rare], kind="stable")
        c, r, v = x.indices[rare][order], rows[rare][order], x.data[rare][order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        lens = np.diff(np.r_[starts, len(c)])
        flat = gram.reshape(-1)
        pairs: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        held = 0
        for m_len in np.unique(lens):
            s = starts[lens == m_len]
            idx = s[:, None] + np.arange(m_len)[None, :]  # (columns, m_len) entries of each column
            rr, vv = r[idx], v[idx]
            pairs.append((rr[:, :, None] * n + rr[:, None, :]).reshape(-1))
            weights.append((vv[:, :, None] * vv[:, None, :]).reshape(-1))
            held += len(pairs[-1])
            if held > 20_000_000 or m_len == lens.max():  # one bincount per ~20M pairs bounds time and memory
                flat += np.bincount(np.concatenate(pairs), weights=np.concatenate(weights), minlength=n * n)
                pairs, weights, held = [], [], 0
    return gram


class TfidfFeaturizer:
    """Exact word n-gram TF-IDF (sublinear tf, smoothed IDF, L2 rows) with log length and one-hot category.

    ``word_ngrams`` ``(lo, hi)``; ``min_df`` the fewest training queries an n-gram must appear in; ``max_features``
    keeps the most frequent; ``max_chars`` keeps the head and tail of very long queries. ``dim`` after ``fit``:
    ``vocabulary + 1 (log length) + categories + 1 (unknown category)`` (the category block only when the training
    queries have categories and ``use_category``). :meth:`transform_sparse` gives the text block as
    :class:`SparseRows`; :meth:`transform` the whole row, dense (for a few queries at a time).
    """

    kind = "tfidf"
    sparse = True

    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int = 100_000,
        max_chars: int = 20_000,
        use_category: bool = True,
    ) -> None:
        if not 1 <= word_ngrams[0] <= word_ngrams[1] <= 4:
            raise ConfigError(f"TfidfFeaturizer: word_ngrams must be 1 <= lo <= hi <= 4, got {word_ngrams}",
                              name="word_ngrams")
        if min_df < 1 or max_features < 1:
            raise ConfigError("TfidfFeaturizer: min_df and max_features must be >= 1", name="min_df")
        self.word_ngrams = (int(word_ngrams[0]), int(word_ngrams[1]))
        self.min_df, self.max_features, self.max_chars = int(min_df), int(max_features), int(max_chars)
        self.use_category = bool(use_category)
        self.version = TFIDF_VERSION
        self.vocabulary: dict[str, int] = {}
        self.idf: np.ndarray | None = None
        self.categories: list[str] = []
        self.length_mean = 0.0
        self.length_std = 1.0

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        half = self.max_chars // 2
        return text[:half] + " " + text[-half:]

    def _grams(self, text: str) -> list[str]:
        words = _TOKEN.findall(self._clip(str(text)).lower())
        lo, hi = self.word_ngrams
        out: list[str] = []
        for n in range(lo, hi + 1):
            out.extend(words if n == 1 else [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)])
        return out

    def fit(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> TfidfFeaturizer:
        """Fit the vocabulary, IDF, length statistics and category set on the training queries."""
        if len(texts) == 0:
            raise ConfigError("TfidfFeaturizer.fit: no texts", name="texts")
        df: Counter[str] = Counter()
        tf: Counter[str] = Counter()
        for t in texts:
            g = self._grams(t)
            tf.update(g)
            df.update(set(g))
        kept = [w for w, c in df.items() if c >= self.min_df]
        kept.sort(key=lambda w: (-tf[w], w))  # the most frequent first; ties by the n-gram (deterministic)
        kept = sorted(kept[: self.max_features])
        self.vocabulary = {w: i for i, w in enumerate(kept)}
        n = len(texts)
        dfa = np.asarray([df[w] for w in kept], dtype=np.float64)
        self.idf = (np.log((1.0 + n) / (1.0 + dfa)) + 1.0).astype(np.float32)
        lengths = np.log1p([len(str(t)) for t in texts])
        self.length_mean = float(np.mean(lengths))
        self.length_std = float(np.std(lengths)) or 1.0
        cats = sorted({str(c) for c in (categories or []) if c is not None}) if self.use_category else []
        self.categories = cats
        return self

    def _check_fitted(self) -> None:
        if self.idf is None:
            raise ConfigError("TfidfFeaturizer is not fitted", name="featurizer", hint="call fit(texts) first")

    @property
    def n_terms(self) -> int:
        """Size of the fitted vocabulary (columns of the text block)."""
        self._check_fitted()
        return len(self.vocabulary)

    @property
    def dim(self) -> int:
        """Length of one dense row; :class:`ConfigError` before ``fit``."""
        return self.n_terms + 1 + (len(self.categories) + 1 if self.categories else 0)

    def transform_sparse(self, texts: Sequence[str]) -> SparseRows:
        """The unit-norm TF-IDF text block of ``texts`` as sparse rows ``(n, n_terms)``."""
        self._check_fitted()
        assert self.idf is not None
        vocab, idf = self.vocabulary, self.idf.astype(np.float64)
        indptr = [0]
        idx: list[np.ndarray] = []
        val: list[np.ndarray] = []
        for t in texts:
            ids = [j for g in self._grams(t) if (j := vocab.get(g)) is not None]
            if ids:
                cols, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
                v = (1.0 + np.log(counts)) * idf[cols]
                v /= float(np.sqrt(v @ v))
                idx.append(cols)
                val.append(v)
            indptr.append(indptr[-1] + (len(cols) if ids else 0))
        indices = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        data = np.concatenate(val) if val else np.zeros(0)
        return SparseRows(np.asarray(indptr), indices, data, len(vocab))

    def extra(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """The dense tail of each row: standardised log length and the one-hot category ``(n, dim − n_terms)``."""
        self._check_fitted()
        if categories is not None and len(categories) != len(texts):
            raise ConfigError(f"transform: {len(texts)} texts but {len(categories)} categories", name="categories")
        return length_and_category(texts, categories, length_mean=self.length_mean, length_std=self.length_std,
                                   known=self.categories)

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """Dense float32 rows ``(n, dim)``: the TF-IDF block, log length, category (a few queries at a time)."""
        x = self.transform_sparse(texts).to_dense()
        return np.hstack([x, self.extra(texts, categories)]).astype(np.float32)

    def fit_transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """``fit`` then ``transform`` the same queries."""
        return self.fit(texts, categories).transform(texts, categories)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: parameters, the vocabulary in column order, IDF, categories, length statistics."""
        self._check_fitted()
        assert self.idf is not None
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "kind": self.kind,
            "version": self.version,
            "params": {"word_ngrams": list(self.word_ngrams), "min_df": self.min_df,
                       "max_features": self.max_features, "max_chars": self.max_chars,
                       "use_category": self.use_category},
            "vocabulary": terms,
            "idf": encode_array(self.idf),
            "categories": list(self.categories),
            "length_mean": self.length_mean,
            "length_std": self.length_std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TfidfFeaturizer:
        """Restore a fitted featurizer saved by :meth:`to_dict` (:class:`ConfigError` if it does not add up)."""
        if d.get("version") != TFIDF_VERSION:
            raise ConfigError(
                f"tfidf featurizer version {d.get('version')!r} is not supported (this build reads {TFIDF_VERSION!r})",
                name="featurizer", hint="refit the policy with this version of agentroute",
            )
        try:
            p = d["params"]
            f = cls(word_ngrams=(int(p["word_ngrams"][0]), int(p["word_ngrams"][1])), min_df=int(p["min_df"]),
                    max_features=int(p["max_features"]), max_chars=int(p["max_chars"]),
                    use_category=bool(p["use_category"]))
            terms = d["vocabulary"]
            idf = decode_array(d["idf"])
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ValueError("vocabulary must be a list of strings")
            if len(set(terms)) != len(terms) or idf.shape != (len(terms),) or not np.isfinite(idf).all():
                raise ValueError(f"{len(terms)} terms (unique?) but idf of shape {idf.shape}")
            f.vocabulary = {t: i for i, t in enumerate(terms)}
            f.idf = idf
            f.categories = [str(c) for c in d["categories"]]
            f.length_mean, f.length_std = float(d["length_mean"]), float(d["length_std"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ConfigError(f"tfidf featurizer: malformed state ({e})", name="featurizer") from None
        return f


__all__ = ["TFIDF_VERSION", "SparseRows", "TfidfFeaturizer", "sparse_gram"]
