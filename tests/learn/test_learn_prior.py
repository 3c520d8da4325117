"""PriorRouter: shrunk per-category priors plus a text residual, chosen by inner cross-validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_helpers import OPTIONS, P_RIGHT, make_table, observation

from agentroute.errors import ConfigError
from agentroute.evaluation import evaluate
from agentroute.features import HashingFeaturizer
from agentroute.policies import load_policy, make_router
from agentroute.policies.prior import PriorRouter, category_prior, lookup
from agentroute.routing import Decision


@pytest.fixture(scope="module")
def split() -> tuple:
    return make_table(360, seed=3).split(0.25, seed=0)


@pytest.fixture(scope="module")
def fitted(split: tuple) -> PriorRouter:
    train, _ = split
    r = make_router("prior", seed=0)
    assert isinstance(r, PriorRouter)
    r.featurizer = HashingFeaturizer(256).fit(train.texts, train.categories)
    return r.fit(train)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=30),
    st.floats(0.0, 1000.0),
    st.integers(0, 2**31),
)
def test_prior_is_a_convex_mix_of_category_and_overall_means(cats: list, shrink: float, seed: int) -> None:
    y = np.random.default_rng(seed).random((len(cats), 2))
    names, tab, g = category_prior(cats, y, shrink)
    assert np.allclose(g, y.mean(axis=0))
    col = np.asarray([str(c) for c in cats], dtype=object)
    for i, c in enumerate(names):
        m = col == c
        lo = np.minimum(y[m].mean(axis=0), g) - 1e-12
        hi = np.maximum(y[m].mean(axis=0), g) + 1e-12
        assert np.all((tab[i] >= lo) & (tab[i] <= hi))  # between the category mean and the overall mean
        if shrink == 0:
            assert np.allclose(tab[i], y[m].mean(axis=0))
    unseen = lookup(names, tab, g, ["never-seen", None])
    assert np.allclose(unseen, g[None, :])


def test_learns_the_per_topic_quality_and_routes_by_lambda(fitted: PriorRouter) -> None:
    q, _ = fitted.predict_outcomes(["prove the lemma", "add the digits"], ["proof", "arith"])
    truth = np.asarray([[P_RIGHT[t][o] for o in OPTIONS] for t in ("proof", "arith")])
    assert np.abs(q - truth).max() < 0.2
    # at λ = 0.3 the true P_RIGHT makes large best on proofs and small best on arithmetic (at λ = 0.05, medium's
    # +0.02 on arithmetic would outweigh its price: small is then the wrong answer)
    lam = 0.3 / fitted.cost_scale  # λ per USD: 0.3 per mean cost of the priciest option
    hard = fitted.decide(observation("prove the theorem by induction", "proof", cost_weight=lam))
    easy = fitted.decide(observation("add the digits", "arith", cost_weight=lam))
    assert isinstance(hard, Decision) and hard.chosen == "large" and easy.chosen == "small"
    assert fitted.decide(observation("prove it", "proof", cost_weight=math.inf)).chosen == "small"


def test_hyperparameters_chosen_by_inner_cv_and_recorded(fitted: PriorRouter) -> None:
    m = fitted.card["metrics"]
    assert m["cv_folds"] == 3 and len(m["cv_aiq"]) == 25
    # the lowest-error setting among those within noise (cv_aiq_tolerance) of the best out-of-fold AIQ
    assert 0 < m["cv_aiq_tolerance"] < 0.05
    assert m["cv_best_aiq"] >= max(m["cv_aiq"].values()) - m["cv_aiq_tolerance"] - 1e-4
    assert fitted.shrink is not None and fitted.alpha is not None


def test_beats_the_zero_router_on_held_out_queries(fitted: PriorRouter, split: tuple) -> None:
    _, test = split
    res = evaluate(test, {"prior": fitted})
    assert res["policies"]["prior"]["aiq"] > res["zero_router"]["aiq"]


def test_save_load_round_trip_without_pickle(fitted: PriorRouter, split: tuple, tmp_path: Path) -> None:
    _, test = split
    fitted.save(tmp_path / "prior")
    back = load_policy(tmp_path / "prior")
    assert isinstance(back, PriorRouter) and back.categories == fitted.categories
    a = fitted.predict_outcomes(test.texts, test.categories)[0]
    b = back.predict_outcomes(test.texts, test.categories)[0]
    assert np.allclose(a, b, atol=1e-4)
    with np.load(tmp_path / "prior" / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype.kind == "f" for k in z.files)


def test_fixed_hyperparameters_skip_cv_and_prior_only_ignores_text(split: tuple) -> None:
    train, _ = split
    # without the back-off to text (tests/learn/test_learn_transfer.py covers it), the category alone decides
    r = PriorRouter(shrink=5.0, alpha=math.inf, seed=0, backoff=False).fit(train)
    assert "cv_aiq" not in r.card["metrics"]
    q1 = r.predict_outcomes(["prove the lemma"], ["proof"])[0]
    q2 = r.predict_outcomes(["add the sum plus digits"], ["proof"])[0]
    assert np.allclose(q1, q2)  # no residual: the category alone decides
    q3 = r.predict_outcomes(["prove the lemma"], [None])[0]
    assert np.allclose(q3[0], np.clip(train.quality.mean(axis=0), 0, 1))
    with pytest.raises(ConfigError):
        PriorRouter(folds=1)
