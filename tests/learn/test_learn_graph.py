"""GraphRouter: fits on a table, saves and loads, adds a model unseen in training by its descriptor alone."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_helpers import OPTIONS, PRICE, make_table

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.errors import ConfigError
from agentroute.features import HashingFeaturizer
from agentroute.policies import GraphRouter, load_policy, make_router
from agentroute.routing import Candidate, Observation, TaskInfo

TABLE = make_table(240, seed=5)
TRAIN, TEST = TABLE.split(0.25, seed=0)


def _fit(table=TRAIN, **kw) -> GraphRouter:  # type: ignore[no-untyped-def]
    r = make_router("graph", seed=0, epochs=40, **kw)
    r.featurizer = HashingFeaturizer(256, n_components=16, seed=0)
    out = r.fit(table)
    assert isinstance(out, GraphRouter)
    return out


FULL = _fit()
HELD = _fit(TRAIN.select_options(["small", "large"]))  # "medium" never seen in training


def test_graph_router_learns_the_topics_and_routes_by_quality_minus_cost() -> None:
    q, _c = FULL.predict_outcomes(TEST.texts, TEST.categories)
    base = np.mean((TRAIN.quality.mean(axis=0) - TEST.quality) ** 2)
    assert np.mean((q - TEST.quality) ** 2) < base  # better than each option's mean quality
    proof = [i for i, t in enumerate(TEST.categories) if t == "proof"]
    arith = [i for i, t in enumerate(TEST.categories) if t == "arith"]
    j_small, j_large = OPTIONS.index("small"), OPTIONS.index("large")
    assert q[proof, j_small].mean() < q[arith, j_small].mean()
    assert q[proof, j_large].mean() > q[proof, j_small].mean()
    idx, _ = FULL.predict_texts(TEST.texts, TEST.categories, cost_weight=0.0)
    assert {FULL.options[i] for i in idx[proof]} != {"small"}
    idx, _ = FULL.predict_texts(TEST.texts, TEST.categories, cost_weight=float("inf"))
    assert {FULL.options[i] for i in idx} == {"small"}  # λ → ∞: the cheapest


def test_graph_router_saves_and_loads_without_pickle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    FULL.save(tmp_path / "g")
    back = load_policy(tmp_path / "g")
    assert isinstance(back, GraphRouter) and back.options == FULL.options
    np.testing.assert_allclose(back.predict_outcomes(TEST.texts, TEST.categories)[0],
                               FULL.predict_outcomes(TEST.texts, TEST.categories)[0], atol=1e-6)
    card = json.loads((tmp_path / "g" / "card.json").read_text())
    assert card["kind"] == "graph" and len(card["params"]["descriptors"]) == len(OPTIONS)


def _with_medium(price: float = PRICE["medium"] * 1e6, **desc) -> GraphRouter:  # type: ignore[no-untyped-def]
    r = _fit(TRAIN.select_options(["small", "large"]))
    return r.add_model("medium", {"price": price, **desc})


def test_a_model_unseen_in_training_gets_sensible_scores_from_its_descriptor() -> None:
    r = _with_medium(size="13B", description="a mid-sized general model")
    q, c = r.predict_outcomes(TEST.texts, TEST.categories)
    assert r.options == ["small", "large", "medium"]
    new = q[:, 2]
    assert new.std() > 1e-3 and ((new > 0) & (new < 1)).all()  # not a constant
    # its cost is its descriptor's price times the query's estimated tokens
    tok = TEST.input_tokens[:, OPTIONS.index("medium")]
    np.testing.assert_allclose(c[:, 2], PRICE["medium"] * tok, rtol=0.35)
    # it can be chosen in a graph, by its id, next to the trained ones
    budget = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())
    cands = tuple(Candidate(o, "model", rank=i, cost_estimate=Decimal("0.0001")) for i, o in enumerate(r.options))
    obs = Observation(TaskInfo("t", TEST.texts[0], TEST.categories[0]), "model", "answer.model", "answer", 0, (),
                      budget, cands)
    d = r.decide(obs)
    assert set(d.scores) == {"small", "large", "medium"} and "medium" in d.evidence["q_hat"]


def test_an_added_model_survives_save_and_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _with_medium()
    r.save(tmp_path / "g.json")
    back = load_policy(tmp_path / "g.json")
    assert back.options == r.options
    np.testing.assert_allclose(back.predict_outcomes(TEST.texts, TEST.categories),
                               r.predict_outcomes(TEST.texts, TEST.categories), atol=1e-6)


@settings(deadline=None, max_examples=25)
@given(price=st.floats(0.0, 1e4), size=st.one_of(st.none(), st.floats(0.01, 2000.0)),
       words=st.text(alphabet="abcdefghij -", max_size=30))
def test_adding_a_model_never_changes_the_known_models_scores(price: float, size: float | None, words: str) -> None:
    before = HELD.predict_outcomes(TEST.texts[:30], TEST.categories[:30])
    r = GraphRouter.from_card(*_card_of(HELD))
    r.add_model("new", {"price": price, "size": size, "description": words})
    q, c = r.predict_outcomes(TEST.texts[:30], TEST.categories[:30])
    np.testing.assert_allclose(q[:, :2], before[0], atol=1e-9)
    np.testing.assert_allclose(c[:, :2], before[1], atol=1e-12)
    assert np.isfinite(q).all() and ((q >= 0) & (q <= 1)).all() and (c[:, 2] >= 0).all()


def _card_of(r: GraphRouter):  # type: ignore[no-untyped-def]
    from agentroute.policies._card import Arrays, Card, card_of

    card, arrays = card_of(r)
    return Card(json.loads(json.dumps(card)), "test"), Arrays(arrays, "test")


@pytest.mark.parametrize(("name", "desc", "match"), [
    ("x", {"size": "7B"}, "has no price"),
    ("x", {"price": 1.0, "colour": "red"}, "unknown descriptor key"),
    ("x", {"price": -1.0}, "is not a price"),
    ("small", {"price": 1.0}, "already an option"),
])
def test_add_model_refuses_a_bad_descriptor_with_one_clear_line(name: str, desc: dict, match: str) -> None:
    r = GraphRouter.from_card(*_card_of(HELD))
    with pytest.raises(ConfigError, match=match):
        r.add_model(name, desc)


def test_cli_fit_policy_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from agentroute.cli import main

    TRAIN.write(tmp_path / "train.csv")
    TEST.write(tmp_path / "test.csv")
    runner = CliRunner()
    res = runner.invoke(main, ["fit", "--table", str(tmp_path / "train.csv"), "--policy", "graph",
                               "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    assert "fitted graph on 180 queries" in res.output
    res = runner.invoke(main, ["route", "--policy", str(tmp_path / "g"), "--table", str(tmp_path / "test.csv"),
                               "--out", str(tmp_path / "d.csv")])
    assert res.exit_code == 0, res.output
