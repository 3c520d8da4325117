"""Backing off from category priors to the text: what a category router predicts for a new or thin category.

A per-category prior knows nothing about a category it never saw; falling back to the overall mean routes every query
of a new domain the same way (the level of random routing, measured on held-out MMLU subjects). Here the fallback
reads the query's text instead: each training category has a **centroid** (the mean of its queries' unit text
vectors), a query is compared with every centroid by cosine similarity, and its backoff prior is the
similarity-weighted mixture of the category priors, ``m(x) = Σ_c softmax(β·cos(x, μ_c)) · prior_c``. A new category
gets ``m(x)``; a thin one is shrunk toward it instead of toward the overall mean
(``(n_c·mean_c + s·m(x)) / (n_c + s)``), so a category with a handful of queries leans on the categories its queries
resemble. ``β`` (``0``: the overall mean, the earlier behaviour) is chosen by cross-validation **over whole
categories** inside the training table: folds hold categories out, exactly the situation it is for.

It owns the centroid geometry and the β selection, nothing else; :class:`~agentroute.policies.prior.PriorRouter`
calls it. Never reads the test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BETA_GRID = (0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)
"""Softmax sharpness over category similarities tried by the category-held-out CV (0: the overall mean). Cosines of
hashed TF-IDF vectors to category centroids are small (0.05-0.3), so useful sharpness runs into the hundreds."""
MAX_FOLDS = 5


def text_block(x: np.ndarray, n_categories: int, has_category_block: bool) -> np.ndarray:
    """The unit-normalised text part of featurizer rows: without the log-length column and the category one-hot."""
    tail = 1 + (n_categories + 1 if has_category_block else 0)
    t = np.asarray(x[:, : x.shape[1] - tail], dtype=np.float64)
    n = np.linalg.norm(t, axis=1, keepdims=True)
    out: np.ndarray = t / np.where(n > 0, n, 1.0)
    return out


def centroids(t: np.ndarray, cats: Sequence[str | None], names: Sequence[str]) -> np.ndarray:
    """Unit mean text vector of each named category ``(len(names), d)``."""
    col = np.asarray([str(c) if c is not None else "\0" for c in cats], dtype=object)
    out = np.zeros((len(names), t.shape[1]))
    for i, c in enumerate(names):
        m = col == c
        if m.any():
            out[i] = t[m].mean(axis=0)
    n = np.linalg.norm(out, axis=1, keepdims=True)
    res: np.ndarray = out / np.where(n > 0, n, 1.0)
    return res


def mixture(t: np.ndarray, cents: np.ndarray, priors: np.ndarray, overall: np.ndarray, beta: float) -> np.ndarray:
    """``m(x)`` of every row of ``t``: the softmax(β·cos)-weighted category priors; the overall mean when β = 0."""
    if beta <= 0 or len(cents) == 0:
        return np.broadcast_to(overall, (len(t), len(overall))).copy()
    s = beta * (t @ cents.T)
    s -= s.max(axis=1, keepdims=True)
    w = np.exp(s)
    w /= w.sum(axis=1, keepdims=True)
    out: np.ndarray = w @ priors
    return out


def category_folds(cats: Sequence[str | None], seed: int) -> np.ndarray:
    """A fold number per query such that each category (``None`` as one) lies in exactly one fold."""
    names = sorted({"" if c is None else str(c) for c in cats})
    k = min(MAX_FOLDS, len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: i % k for i, j in enumerate(order)}
    return np.asarray([fold_of["" if c is None else str(c)] for c in cats], dtype=np.int64)


def select_beta(t: np.ndarray, y: np.ndarray, cats: Sequence[str | None], shrink: float, seed: int,
                score: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
                prior_of: Callable[[Sequence[str | None], np.ndarray, float], tuple[list[str], np.ndarray, np.ndarray]],
                pick: Callable[[dict[float, tuple[float, float]]], float]) -> tuple[float, dict[float, float]]:
    """β by category-held-out CV: each fold's categories are predicted by ``m(x)`` of the other folds' categories.

    ``score(rows, q_hat)`` gives ``(aiq, mse)`` of predictions for those rows; ``pick`` chooses among the scores
    (the routers' one-standard-error rule). Returns β and the out-of-fold AIQ of every β tried.
    """
    names = sorted({"" if c is None else str(c) for c in cats})
    if len(names) < 3:
        return 0.0, {}
    fold = category_folds(cats, seed)
    oof = {b: np.zeros_like(y) for b in BETA_GRID}
    for k in np.unique(fold):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        ctr = [cats[int(i)] for i in tr]
        pnames, ptab, g = prior_of(ctr, y[tr], shrink)
        cents = centroids(t[tr], ctr, pnames)
        for b in BETA_GRID:
            oof[b][te] = mixture(t[te], cents, ptab, g, b)
    rows = np.arange(len(y))
    scores = {b: score(rows, np.clip(q, 0.0, 1.0)) for b, q in oof.items()}
    return pick(scores), {b: round(s[0], 5) for b, s in scores.items()}


__all__ = ["BETA_GRID", "category_folds", "centroids", "mixture", "select_beta", "text_block"]
