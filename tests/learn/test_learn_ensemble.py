"""The stacked router: weights chosen on the training table, a real ensemble of members, saved without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import make_table, observation

from agentroute.data import load_builtin
from agentroute.errors import ConfigError
from agentroute.evaluation import evaluate
from agentroute.features import HashingFeaturizer
from agentroute.policies import load_policy, make_router
from agentroute.policies.ensemble import EnsembleRouter, _simplex


def test_simplex_grid_covers_every_blend() -> None:
    grid = _simplex(3, 0.25)
    assert len(grid) == 15  # C(4 + 2, 2)
    assert all(abs(sum(w) - 1.0) < 1e-12 and min(w) >= 0 for w in grid)
    assert (1.0, 0.0, 0.0) in grid and (0.5, 0.25, 0.25) in grid


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="member"):
        EnsembleRouter(["prior", "oracle"])
    with pytest.raises(ConfigError, match="step"):
        EnsembleRouter(step=0.3)
    with pytest.raises(ConfigError, match="weights"):
        EnsembleRouter(["prior", "knn"], weights=[1.0])


def test_ensemble_learns_the_topics_and_keeps_only_weighted_members() -> None:
    train, test = make_table(450, seed=1), make_table(150, seed=2)
    r = make_router("ensemble", seed=0, featurizer=HashingFeaturizer(256)).fit(train)
    assert isinstance(r, EnsembleRouter)
    assert r.weights is not None and abs(sum(r.weights) - 1.0) < 1e-9 and min(r.weights) > 0
    assert len(r.members) == len(r.member_kinds) == len(r.weights)
    assert "cv_best_aiq" in r.card["metrics"]
    # at λ high, proofs still go to large (only it solves them) and arithmetic goes to small
    idx, _ = r.predict_texts(["prove the theorem by induction", "add the sum of the digits"], ["proof", "arith"],
                             0.5 / r.cost_scale)  # λ per USD
    assert [r.options[i] for i in idx] == ["large", "small"]
    res = evaluate(test, {"ensemble": r})
    assert res["policies"]["ensemble"]["aiq"] > res["zero_router"]["aiq"]


def test_fixed_weights_blend_the_members_exactly() -> None:
    train = make_table(300, seed=3)
    feats = HashingFeaturizer(128).fit(train.texts, train.categories)
    ens = EnsembleRouter(["knn", "linear"], weights=[1, 3], featurizer=feats, seed=0).fit(train)
    knn = make_router("knn", featurizer=feats, k=ens.members[0].k).fit(train)  # type: ignore[attr-defined]
    lin = make_router("linear", featurizer=feats, alpha=ens.members[1].alpha).fit(train)  # type: ignore[attr-defined]
    texts, cats = train.texts[:20], train.categories[:20]
    want = 0.25 * knn.predict_outcomes(texts, cats)[0] + 0.75 * lin.predict_outcomes(texts, cats)[0]
    np.testing.assert_allclose(ens.predict_outcomes(texts, cats)[0], want, atol=1e-6)


def test_save_load_round_trip_gives_identical_decisions(tmp_path: Path) -> None:
    train, test = make_table(300, seed=4), make_table(90, seed=5)
    r = EnsembleRouter(["prior", "knn", "linear"], weights=[2, 1, 1], featurizer=HashingFeaturizer(128)).fit(train)
    card_path = r.save(tmp_path / "ens")
    card = json.loads(card_path.read_text())
    assert card["kind"] == "ensemble" and card["params"]["members"] == ["prior", "knn", "linear"]
    with np.load(tmp_path / "ens" / "arrays.npz", allow_pickle=False) as z:
        assert {"m0/prior", "m1/x", "m2/w"} <= set(z.files)
    back = load_policy(tmp_path / "ens")
    assert isinstance(back, EnsembleRouter)
    for lam in (0.0, 0.1, 1.0, 10.0):
        a, _ = r.predict_texts(test.texts, test.categories, lam / r.cost_scale)
        b, _ = back.predict_texts(test.texts, test.categories, lam / r.cost_scale)
        np.testing.assert_array_equal(a, b)
    obs = observation("prove the lemma", "proof", cost_weight=0.2 / r.cost_scale)
    assert back.decide(obs).chosen == r.decide(obs).chosen


@pytest.mark.slow
def test_ensemble_beats_the_zero_router_on_real_held_out_queries(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTROUTE_DATA_DIR", str(data_dir))
    table = load_builtin("routellm")
    small = table.subset(np.random.default_rng(0).permutation(len(table))[:2500])
    train, test = small.split(0.25, seed=0)
    r = make_router("ensemble", seed=0, featurizer=HashingFeaturizer(512)).fit(train)
    res = evaluate(test, {"ensemble": r})
    rec = res["policies"]["ensemble"]
    assert rec["aiq"] > res["zero_router"]["aiq"] + 0.01
    assert rec["gap_closed"] > 0.15
    assert rec["apgr"] > 0.55


def test_ensemble_keeps_the_policy_contract() -> None:
    r = EnsembleRouter(["prior", "linear"], weights=[1, 1], featurizer=HashingFeaturizer(128)).fit(make_table(240, 6))
    for ids in (["small", "medium", "large"], ["small", "large"], ["medium"]):
        d = r.decide(observation("prove the theorem by induction", "proof", ids, cost_weight=0.1 / r.cost_scale))
        assert d.chosen in ids and sum(d.probabilities.values()) == pytest.approx(1.0)
        assert set(d.probabilities) == set(ids) and d.reason.startswith("ensemble")


@pytest.mark.slow
def test_cli_fits_and_evaluates_an_ensemble(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agentroute.cli import main

    train, test = make_table(300, seed=7).split(0.3, seed=0)
    train.write(tmp_path / "train.csv")
    test.write(tmp_path / "test.csv")
    runner = CliRunner()
    res = runner.invoke(
        main, ["fit", "--table", str(tmp_path / "train.csv"), "--policy", "ensemble", "--out", str(tmp_path / "ens")]
    )
    assert res.exit_code == 0, res.output
    assert "fitted ensemble on 210 queries" in res.output
    res = runner.invoke(
        main, ["eval", "--table", str(tmp_path / "test.csv"), "--policy", str(tmp_path / "ens"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["policies"]["ens"]["aiq"] > metrics["zero_router"]["aiq"]
