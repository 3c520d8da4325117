from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import OPTIONS, make_table, observation

from agentroute.errors import ConfigError, DataError
from agentroute.features import HashingFeaturizer
from agentroute.policies import load_policy, make_router
from agentroute.policies._card import FORMAT
from agentroute.policies.bandit import LinUCBPolicy, ThompsonPolicy
from agentroute.policies.base import BasePolicy
from agentroute.policies.predictive import (
    ConstantRouter,
    KNNRouter,
    LinearRouter,
    MLPRouter,
    RandomRouter,
)
from agentroute.routing import Candidate, Decision, Feedback, Observation, RouterPolicy

TRAIN, TEST = make_table(360, seed=1).split(0.25, seed=0)
SCALE = TRAIN.cost_scale()


def usd(lam: float) -> float:
    """λ per cost unit of the training table (the mean cost of its priciest option) as λ per USD."""
    return lam / SCALE


@pytest.fixture(scope="module")
def split() -> tuple:
    return TRAIN, TEST


@pytest.fixture(scope="module")
def fitted(split: tuple) -> dict[str, BasePolicy]:
    train, _ = split
    f = HashingFeaturizer(256).fit(train.texts, train.categories)
    out: dict[str, BasePolicy] = {}
    for name in ("knn", "linear", "mlp", "cheapest", "strongest", "random"):
        p = make_router(name, seed=0, **({"epochs": 30} if name == "mlp" else {}))
        if p.uses_features:
            p.featurizer = f
        out[name] = p.fit(train)
    out["linucb"] = LinUCBPolicy(None, HashingFeaturizer(256, n_components=8), 0.5, None, 0).fit(train)
    out["thompson"] = ThompsonPolicy(None, HashingFeaturizer(256, n_components=8), 0.3, None, 0).fit(train)
    return out


ALL = ("knn", "linear", "mlp", "cheapest", "strongest", "random", "linucb", "thompson")


@pytest.mark.parametrize("name", ALL)
def test_contract_choice_is_a_candidate_and_probabilities_sum_to_one(fitted: dict, name: str) -> None:
    p = fitted[name]
    assert isinstance(p, RouterPolicy) and isinstance(p, BasePolicy)
    for ids in (OPTIONS, ["small", "large"], ["medium"]):
        d = p.decide(observation("prove the theorem by induction", "proof", ids, cost_weight=usd(0.1)))
        assert isinstance(d, Decision) and d.chosen in ids
        assert sum(d.probabilities.values()) == pytest.approx(1.0)
        assert set(d.probabilities) == set(ids) and d.reason


@pytest.mark.parametrize("name", ("knn", "linear", "mlp", "linucb"))
def test_learned_routes_follow_the_topic_and_lambda(fitted: dict, name: str) -> None:
    p = fitted[name]

    def pick(text: str, cat: str, lam: float) -> str:
        if name == "linucb":  # decide() explores; the greedy choice is what it has learned
            return OPTIONS[int(p.predict_texts([text], [cat], usd(lam))[0][0])]
        return str(p.decide(observation(text, cat, cost_weight=usd(lam))).chosen)

    assert pick("add the sum of digits plus total", "arith", 3.0) == "small"
    assert pick("prove the lemma bound by induction", "proof", 0.05) == "large"
    assert pick("prove the lemma bound", "proof", 1e6) == "small"


@pytest.mark.parametrize("name", ("knn", "linear", "mlp"))
def test_predictors_beat_random_on_held_out_queries(fitted: dict, split: tuple, name: str) -> None:
    _, test = split
    q_hat, _ = fitted[name].predict_outcomes(test.texts, test.categories)
    mse = float(np.mean((q_hat - test.quality) ** 2))
    base = float(np.mean((test.quality.mean(axis=0) - test.quality) ** 2))
    assert mse < base


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip_without_pickle(fitted: dict, split: tuple, tmp_path: Path, name: str) -> None:
    _, test = split
    p = fitted[name]
    target = tmp_path / "pol" if name in ("knn", "mlp", "linucb") else tmp_path / "pol.json"
    card_path = p.save(target)
    card = json.loads(Path(card_path).read_text())
    assert card["format"] == FORMAT and card["family"] in ("predictive", "bandit") and card["cost_unit"] == "usd"
    assert card["kind"] == p.kind and card["options"] == OPTIONS and "metrics" in card and card["seed"] == 0
    assert card["cost_weight"] == pytest.approx(p.cost_weight)
    npz = Path(card_path).with_name(card["arrays"])
    with np.load(npz, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    back = load_policy(target)
    assert type(back) is type(p)
    if name != "random":
        i1, _ = p.predict_texts(test.texts, test.categories, usd(0.3))
        i2, _ = back.predict_texts(test.texts, test.categories, usd(0.3))
        assert (np.asarray(i1) == np.asarray(i2)).all()
    assert load_policy(target, cost_weight=2.5).cost_weight == 2.5


def test_load_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such policy"):
        load_policy(tmp_path / "missing")
    (tmp_path / "bad.json").write_text(json.dumps({"format": FORMAT, "family": "predictive", "kind": "nope"}))
    with pytest.raises(DataError, match="unknown policy kind"):
        load_policy(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": "agentroute.router/1", "kind": "nope"}))
    with pytest.raises(DataError, match="cost_scale"):  # an earlier card is upgraded first: it names what is missing
        load_policy(tmp_path / "old.json")
    (tmp_path / "odd.json").write_text(json.dumps({"format": "agentroute.router/0"}))
    with pytest.raises(DataError, match="policy format"):
        load_policy(tmp_path / "odd.json")


def test_fit_needs_costs_and_unfitted_raises() -> None:
    t = make_table(30)
    t.cost[:] = np.nan
    with pytest.raises(DataError, match="--prices"):
        KNNRouter().fit(t)
    with pytest.raises(ConfigError, match="not fitted"):
        LinearRouter().decide(observation("x"))
    with pytest.raises(ConfigError):
        make_router("nope")
    with pytest.raises(ConfigError):
        KNNRouter(cost_weight=-1)


def test_hyperparameters_selected_on_holdout(fitted: dict) -> None:
    assert fitted["knn"].k in (5, 10, 20, 40, 80)
    assert fitted["linear"].alpha in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    assert fitted["mlp"].card["metrics"]["best_epoch"] >= 1
    assert isinstance(fitted["cheapest"], ConstantRouter) and fitted["cheapest"].option == "small"
    assert fitted["strongest"].option == "large"
    assert isinstance(fitted["random"], RandomRouter) and isinstance(fitted["mlp"], MLPRouter)


def test_unknown_candidates_fall_back_to_cheapest(fitted: dict) -> None:
    obs = observation("x")
    other = Observation(
        **{f: getattr(obs, f) for f in obs.__slots__ if f != "candidates"},
        candidates=(Candidate("zz", "model", rank=0), Candidate("yy", "model", rank=1)),
    )
    d = fitted["linear"].decide(other)
    assert d.chosen == "zz" and "no candidate" in d.reason


def test_descriptor_model_matches_an_option(fitted: dict) -> None:
    obs = observation("prove the lemma bound by induction", "proof")
    tiers = (
        Candidate("cheap", "model", rank=0, descriptor={"model": "small"}),
        Candidate("big", "model", rank=1, descriptor={"model": "large"}),
    )
    other = Observation(
        **{f: getattr(obs, f) for f in obs.__slots__ if f not in ("candidates", "extra")},
        candidates=tiers,
        extra={"cost_weight": usd(0.05)},
    )
    assert fitted["knn"].decide(other).chosen == "big"


def test_bandit_learns_online_through_feedback() -> None:
    train = make_table(600, seed=5)
    f = HashingFeaturizer(256, n_components=8).fit(train.texts, train.categories)
    bandit = LinUCBPolicy(OPTIONS, f, 0.5, 0.2 / train.cost_scale(), 0, cost_scale=train.cost_scale())
    rewards = []
    for i in range(len(train)):
        obs = observation(train.texts[i], train.categories[i], cost_weight=0.2 / train.cost_scale())
        d = bandit.decide(obs)
        j = OPTIONS.index(d.chosen)
        q, c = float(train.quality[i, j]), float(train.cost[i, j])
        bandit.feedback(
            Feedback(
                obs,
                d,
                cost_usd=None if i % 50 == 0 else __import__("decimal").Decimal(str(c)),
                tokens=10,
                latency=0.0,
                quality=q,
            )
        )
        rewards.append(q - 0.2 * c / train.cost_scale())
    net = train.quality - 0.2 * train.cost / train.cost_scale()
    late = slice(300, None)
    assert np.mean(rewards[late]) > net[late].mean(axis=0).max() + 0.02  # beats every fixed option
    assert np.mean(rewards[late]) > np.mean(rewards[:50])  # and its own start
    assert bandit.counts.sum() == len(train)


def test_bandit_update_api_and_thompson_propensities() -> None:
    b = LinUCBPolicy(["a", "b"], None, 1.0, 0.0, 0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.standard_normal(3)
        b.update(x, "a", 1.0 if x[0] > 0 else 0.0)
        b.update(x, "b", 1.0 if x[0] <= 0 else 0.0)
    q, _, _ = b._heads(b._x(np.array([2.0, 0.0, 0.0])))
    assert q[0] > q[1]
    with pytest.raises(ConfigError, match="unknown option"):
        b.update(np.zeros(3), "c", 1.0)
    with pytest.raises(ConfigError, match="too many"):
        LinUCBPolicy(["a"]).update(np.zeros(600), "a", 1.0)
    t = make_table(90)
    ts = ThompsonPolicy(None, HashingFeaturizer(128, n_components=4), 0.3, None, 0).fit(t)
    d = ts.decide(observation("sum plus digits", "arith"))
    assert 0 < d.probabilities[d.chosen] <= 1 and sum(d.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("given", ["ppo", "ppo.json", "ppo.npz"])
def test_load_policy_dispatches_learned_policies(tmp_path: Path, given: str) -> None:
    learned = pytest.importorskip("agentroute.policies.learned")
    w = np.zeros((4, len(OPTIONS)), dtype=np.float32)
    b = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    learned.LearnedPolicy([(w, b)], {"options": OPTIONS}).save(tmp_path / "ppo")
    back = load_policy(tmp_path / given)
    assert isinstance(back, learned.LearnedPolicy) and back.options == OPTIONS
