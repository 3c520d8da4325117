"""TextRouter: exact-vocabulary TF-IDF logistic (or ridge) stacked with the category prior, calibrated, by inner CV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from learn_helpers import OPTIONS, P_RIGHT, make_table, observation

from agentroute._tfidf import TfidfFeaturizer
from agentroute.errors import ConfigError
from agentroute.evaluation import evaluate
from agentroute.features import HashingFeaturizer
from agentroute.policies import load_policy, make_router
from agentroute.policies._logistic import _loss_grad, fit_logistic, predict_logistic
from agentroute.policies.text import LOGISTIC_ALPHA_GRID, TextRouter, _category_folds, _cg


@pytest.fixture(scope="module")
def split() -> tuple:
    return make_table(360, seed=3).split(0.25, seed=0)


@pytest.fixture(scope="module")
def fitted(split: tuple) -> TextRouter:
    r = make_router("text", seed=0)
    assert isinstance(r, TextRouter)
    return r.fit(split[0])


def test_learns_the_topics_from_the_words_and_beats_the_zero_router(fitted: TextRouter, split: tuple) -> None:
    assert isinstance(fitted.featurizer, TfidfFeaturizer)
    m = fitted.card["metrics"]
    assert m["link"] == "logistic" and m["alpha"] in LOGISTIC_ALPHA_GRID and m["alpha_new"] in LOGISTIC_ALPHA_GRID
    assert 0.0 <= m["weight"] <= 1.0 and m["cv_new_category_folds"] is False  # 3 categories: too few to hold out
    assert m["n_terms"] == fitted.featurizer.n_terms
    # a new category (None): the text alone must still tell proofs from sums
    q, _ = fitted.predict_outcomes(["prove the lemma by induction", "add the digits plus the total"], [None, None])
    small, large = OPTIONS.index("small"), OPTIONS.index("large")
    assert q[0, large] - q[0, small] > 0.4
    assert abs(q[1, large] - q[1, small]) < 0.25
    res = evaluate(split[1], {"text": fitted})
    assert res["policies"]["text"]["aiq"] > res["zero_router"]["aiq"] + 0.02


def test_routes_identically_after_save_and_load(fitted: TextRouter, split: tuple, tmp_path: Path) -> None:
    card = fitted.save(tmp_path / "text")
    back = load_policy(card)
    assert isinstance(back, TextRouter) and isinstance(back.featurizer, TfidfFeaturizer)
    assert back.featurizer.vocabulary == fitted.featurizer.vocabulary  # type: ignore[union-attr]
    test = split[1]
    for lam in (0.0, fitted.cost_weight, 100 * fitted.cost_weight):
        a, _ = fitted.predict_texts(test.texts, test.categories, lam)
        b, _ = back.predict_texts(test.texts, test.categories, lam)
        assert np.array_equal(a, b)
    q1, _ = fitted.predict_outcomes(test.texts, test.categories)
    q2, _ = back.predict_outcomes(test.texts, test.categories)
    assert np.allclose(q1, q2, atol=1e-5)  # weights are stored as float32
    obs = observation("prove the theorem by induction", "proof")
    assert back.decide(obs).chosen == fitted.decide(obs).chosen == "large"


def test_fixed_settings_skip_selection_and_the_stack_weights_mix_prior_and_text(split: tuple) -> None:
    train = split[0]
    prior_only = TextRouter(alpha=0.3, shrink=10.0, weight=0.0).fit(train)
    text_only = TextRouter(alpha=0.3, shrink=10.0, weight=1.0).fit(train)
    assert "cv_best_aiq" not in prior_only.card["metrics"]
    q_p, _ = prior_only.predict_outcomes(["anything at all"], ["proof"])
    truth = np.asarray([P_RIGHT["proof"][o] for o in OPTIONS])
    assert np.abs(q_p[0] - truth).max() < 0.2  # the shrunk category mean, whatever the words
    q_t, _ = text_only.predict_outcomes(["prove the theorem"], ["arith"])
    assert q_t[0, OPTIONS.index("large")] - q_t[0, OPTIONS.index("small")] > 0.4  # the words, whatever the category


def test_a_new_category_is_routed_by_the_text_model_chosen_for_the_text_alone(split: tuple) -> None:
    r = TextRouter(alpha=1.0, shrink=10.0, weight=0.0, calibrate=False, link="ridge").fit(split[0])
    r.alpha_new = 3.0
    r.w_new, r.b_new = 2 * r.w, r.b + 0.1  # stand-ins: only the new category may read them
    q, _ = r.predict_outcomes(["prove the lemma", "prove the lemma"], ["proof", "never-seen"])
    t = r._tfidf().transform_sparse(["prove the lemma"]).dot(r.w)[0] * 2 + r.b + 0.1
    assert np.allclose(q[1], np.clip(t, 0, 1))
    assert np.allclose(q[0], r.prior[r.categories.index("proof")])  # weight 0: the known category's prior alone


def test_conjugate_gradients_solve_the_ridge_system() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 20))
    k = x @ x.T
    y = rng.standard_normal((60, 3))
    for alpha in (0.3, 3.0):
        assert np.allclose(_cg(k, y, alpha), np.linalg.solve(k + alpha * np.eye(60), y), atol=1e-5)


def test_clear_errors(split: tuple) -> None:
    with pytest.raises(ConfigError, match="folds"):
        TextRouter(folds=1)
    with pytest.raises(ConfigError, match="weight"):
        TextRouter(weight=1.5)
    with pytest.raises(ConfigError, match="tfidf featurizer"):
        TextRouter(featurizer=HashingFeaturizer(64)).fit(split[0])


def test_a_card_without_its_vocabulary_is_refused(fitted: TextRouter, tmp_path: Path) -> None:
    import json

    card = fitted.save(tmp_path / "t")
    raw = json.loads(card.read_text())
    raw["featurizer"]["vocabulary"] = raw["featurizer"]["vocabulary"][:-1]
    card.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="tfidf featurizer"):
        load_policy(card)


def test_logistic_regression_reaches_its_optimum_on_fractional_outcomes() -> None:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta", "proof", "sum"], size=6)) for _ in range(200)]
    feats = TfidfFeaturizer(min_df=1).fit(texts)
    xs = feats.transform_sparse(texts)
    truth = rng.standard_normal(xs.n_cols)
    p = 1 / (1 + np.exp(-3 * xs.dot(truth)))
    y = np.stack([rng.random(200) < p, p], axis=1).astype(float)  # one 0/1 column, one fractional
    for c in (0.3, 10.0):
        w, b = fit_logistic(xs, y, c, tol=1e-6)
        _, gw, gb = _loss_grad(xs, y, c, w, b)
        assert max(np.abs(gw).max(), np.abs(gb).max()) < 1e-6  # the gradient vanishes at the solution
        q = predict_logistic(xs, w, b)
        assert q.shape == (200, 2) and q.min() > 0 and q.max() < 1
    assert np.corrcoef(q[:, 1], p)[0, 1] > 0.9


def test_category_folds_hold_whole_categories_out() -> None:
    cats = [f"c{i % 9}" for i in range(90)] + [None] * 5
    fold = _category_folds(cats, 3, seed=0)
    assert fold is not None and set(fold.tolist()) == {0, 1, 2}
    for c in set(cats):
        assert len({int(fold[i]) for i, k in enumerate(cats) if k == c}) == 1
    assert _category_folds(cats[:50], 3, seed=0) is not None and _category_folds(["a", "b"] * 9, 3, seed=0) is None


def test_many_categories_select_the_new_category_model_on_held_out_categories(tmp_path: Path) -> None:
    table = make_table(300, seed=5)
    rng = np.random.default_rng(0)
    table.categories = [f"{c}-{rng.integers(3)}" for c in table.categories]  # 9 categories: whole ones held out
    r = TextRouter(seed=0).fit(table)
    m = r.card["metrics"]
    assert m["cv_new_category_folds"] is True and m["alpha_new"] in LOGISTIC_ALPHA_GRID
    assert len(m["calibration_new"]) == len(OPTIONS)
    back = load_policy(r.save(tmp_path / "t"))
    q1, _ = r.predict_outcomes(["prove it", "add them"], ["never-seen", None])
    q2, _ = back.predict_outcomes(["prove it", "add them"], ["never-seen", None])
    assert np.allclose(q1, q2, atol=1e-5)


def test_a_card_from_before_the_logistic_link_routes_as_a_ridge(split: tuple, tmp_path: Path) -> None:
    import json

    r = TextRouter(alpha=3.0, shrink=10.0, weight=0.5, link="ridge").fit(split[0])
    card = r.save(tmp_path / "old")
    raw = json.loads(card.read_text())
    del raw["params"]["link"]
    card.write_text(json.dumps(raw))
    back = load_policy(card)
    assert isinstance(back, TextRouter) and back.link == "ridge"
    q1, _ = r.predict_outcomes(split[1].texts, split[1].categories)
    q2, _ = back.predict_outcomes(split[1].texts, split[1].categories)
    assert np.allclose(q1, q2, atol=1e-5)
    with pytest.raises(ConfigError, match="link"):
        TextRouter(link="probit")
