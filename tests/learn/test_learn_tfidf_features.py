"""TfidfFeaturizer: an exact word n-gram vocabulary as sparse rows; its card; why it beats hashing on rare words."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute._tfidf import SparseRows, TfidfFeaturizer, sparse_gram
from agentroute.errors import ConfigError
from agentroute.features import HashingFeaturizer, featurizer_from_dict, make_featurizer
from agentroute.policies._ridge import Ridge

TEXTS = [
    "What is the capital of France?",
    "Prove the lemma by induction on n.",
    "Add the digits of 1234 and the digits of 99.",
    "What is the capital of Peru, and its river?",
    "Prove that the integral converges.",
    "A single word",
]


def _dense_rows(x: SparseRows) -> np.ndarray:
    out = np.zeros(x.shape)
    for i in range(len(x)):
        lo, hi = x.indptr[i], x.indptr[i + 1]
        out[i, x.indices[lo:hi]] = x.data[lo:hi]
    return out


def test_vocabulary_is_exact_word_ngrams_seen_twice() -> None:
    f = TfidfFeaturizer().fit(TEXTS)
    # tokens of two or more word characters, lower-cased; 1-2-grams in at least two queries
    assert {"capital", "the capital", "prove", "what is", "the integral"} - set(f.vocabulary) == {"the integral"}
    assert "france" not in f.vocabulary  # once only
    assert "digits" not in f.vocabulary  # twice, but in one query: document frequency 1
    assert "a" not in f.vocabulary and "n" not in f.vocabulary  # one-character tokens are not words
    x = f.transform_sparse(TEXTS)
    norms = np.sqrt(np.bincount(x._row_ids(), weights=x.data**2, minlength=len(x)))
    assert np.allclose(norms[:5], 1.0)
    assert norms[5] == 0.0  # no known n-gram: an empty row
    dense = f.transform(TEXTS, ["geo", "proof", None, "geo", "proof", "x"])
    assert dense.shape == (6, f.dim) and dense.dtype == np.float32
    assert np.allclose(dense[:, : f.n_terms], _dense_rows(x), atol=1e-6)


def test_matches_a_plain_reference_vectoriser() -> None:
    sk = pytest.importorskip("sklearn.feature_extraction.text")
    texts = [*TEXTS, *(t.upper() for t in TEXTS), "the capital of the digits"]
    ref = sk.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit(texts)
    f = TfidfFeaturizer().fit(texts)
    assert set(ref.vocabulary_) == set(f.vocabulary)
    order = [ref.vocabulary_[t] for t in sorted(f.vocabulary, key=f.vocabulary.__getitem__)]
    want = ref.transform(texts).toarray()[:, order]
    assert np.allclose(_dense_rows(f.transform_sparse(texts)), want, atol=1e-6)


def test_card_round_trip_is_json_and_transforms_identically() -> None:
    f = TfidfFeaturizer(max_features=50).fit(TEXTS, ["a", "b", "c", "a", "b", None])
    d = json.loads(json.dumps(f.to_dict()))
    g = featurizer_from_dict(d)
    assert isinstance(g, TfidfFeaturizer)
    assert g.vocabulary == f.vocabulary and g.categories == f.categories
    new = ["what is the capital of the digits", "prove it"]
    assert np.array_equal(g.transform(new, ["a", "zz"]), f.transform(new, ["a", "zz"]))
    assert isinstance(make_featurizer("tfidf"), TfidfFeaturizer)


@pytest.mark.parametrize("bad", [
    {"version": "tfidf-0"},
    {"vocabulary": ["a", "a"]},
    {"vocabulary": [1, 2]},
    {"idf": {"shape": [1], "b64": ""}},
    {"params": {}},
])
def test_a_malformed_card_is_refused(bad: dict) -> None:
    d = {**TfidfFeaturizer().fit(TEXTS).to_dict(), **bad}
    with pytest.raises(ConfigError, match="tfidf featurizer"):
        featurizer_from_dict(d)


def test_not_fitted_and_bad_params() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        TfidfFeaturizer().transform_sparse(["x"])
    with pytest.raises(ConfigError, match="word_ngrams"):
        TfidfFeaturizer(word_ngrams=(2, 1))
    with pytest.raises(ConfigError, match="no texts"):
        TfidfFeaturizer().fit([])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 30), st.floats(0.0, 0.5), st.integers(0, 2**31))
def test_sparse_products_and_gram_equal_the_dense_ones(n: int, d: int, density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n, d)) < density, rng.standard_normal((n, d)), 0.0)
    rows, cols = np.nonzero(dense)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n))]
    x = SparseRows(indptr, cols, dense[rows, cols], d)
    w = rng.standard_normal((d, 3))
    r = rng.standard_normal((n, 2))
    assert np.allclose(x.dot(w), dense @ w)
    assert np.allclose(x.tdot(r), dense.T @ r)
    pick = rng.integers(0, n, size=5)
    assert np.allclose(_dense_rows(x.take(pick)), dense[pick])
    assert np.allclose(sparse_gram(x, dense_share=float(rng.choice([0.0, 0.3, 1.0]))), dense @ dense.T)


def _keyword_table(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Queries of filler words and one of 600 keywords; whether the small model is right depends on the keyword."""
    rng = np.random.default_rng(seed)
    filler = ["please", "answer", "this", "question", "about", "topic", "quickly", "now"]
    keys = rng.integers(0, 600, size=n)
    texts = [" ".join([*rng.choice(filler, 5), f"kw{k:03d}x", *rng.choice(filler, 3)]) for k in keys]
    return texts, (keys % 2 == 0).astype(float)  # even keywords: the small model is right


def test_word_level_features_separate_rare_keywords_that_hashing_folds_together() -> None:
    """The mechanism behind the text router: each rare keyword keeps its own column instead of sharing a bucket.

    600 keywords, each seen a handful of times, decide the outcome. With 64 hash buckets about nine keywords of
    both kinds share every bucket (and the character n-grams of the keywords, ``kw0``, ``w01`` ..., share even
    more), so a ridge on hashed features cannot tell them apart; with the exact vocabulary every keyword is a
    column and the same ridge recovers them.
    """
    texts, y = _keyword_table(4000, seed=1)
    tr, te = slice(0, 3000), slice(3000, None)

    def accuracy(f: TfidfFeaturizer | HashingFeaturizer) -> float:
        f.fit(texts[tr])
        xtr, xte = f.transform(texts[tr]), f.transform(texts[te])
        (w, b), = [Ridge(xtr).weights(y[tr, None], 0.3)]
        return float((((xte @ w + b)[:, 0] > 0.5) == (y[te] > 0.5)).mean())

    exact = accuracy(TfidfFeaturizer(word_ngrams=(1, 1), use_category=False))
    hashed = accuracy(HashingFeaturizer(64, use_category=False))
    assert exact > 0.9, exact
    assert hashed < 0.7, hashed
