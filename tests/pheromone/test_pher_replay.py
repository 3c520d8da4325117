"""Prequential replay: the results contract, bandit feedback, drift, summaries and the named policies."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pher_helpers import synthetic_table
from hypothesis import given
from hypothesis import strategies as st

from agentroute.errors import ConfigError, DataError
from agentroute.policies.baselines import Cheapest, Random
from agentroute.replay import (
    RESULT_COLUMNS,
    candidates_of,
    derangement,
    make_policy,
    outcome_matrix,
    replay,
    summarize,
)
from agentroute.routing import Decision, Feedback, Observation, one_hot


class Spy:
    """Remembers what it saw; always picks the candidate named in ``pick``."""

    name = "spy"
    version = "1"

    def __init__(self, pick: str) -> None:
        self.pick = pick
        self.seen: list[Observation] = []
        self.fed: list[Feedback] = []

    def decide(self, obs: Observation) -> Decision:
        self.seen.append(obs)
        return Decision(self.pick, one_hot(obs, self.pick))

    def feedback(self, fb: Feedback) -> None:
        self.fed.append(fb)


def test_results_csv_is_the_stable_contract(tmp_path: Path) -> None:
    t = synthetic_table(50)
    res = replay(t, Random(0), order="shuffle", seed=3)
    out = res.write_csv(tmp_path / "r.csv")
    with out.open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == RESULT_COLUMNS == ("step", "query_id", "option", "quality", "cost_usd")
    assert len(rows) == 51
    col = {o: j for j, o in enumerate(t.options)}
    qi = {q: i for i, q in enumerate(t.query_ids)}
    assert [int(r[0]) for r in rows[1:]] == list(range(50))
    assert sorted(r[1] for r in rows[1:]) == sorted(t.query_ids)  # a permutation of the stream
    for r in rows[1:]:
        i, j = qi[r[1]], col[r[2]]
        assert float(r[3]) == t.quality[i, j] and float(r[4]) == pytest.approx(t.cost[i, j])


def test_policy_sees_only_the_chosen_outcome_and_lambda() -> None:
    t = synthetic_table(20)
    spy = Spy("opt1")
    replay(t, spy, cost_weight=0.3)
    assert [o.task.id for o in spy.seen] == t.query_ids
    o = spy.seen[0]
    assert [c.id for c in o.candidates] == ["opt0", "opt1", "opt2"]  # ranked by mean cost
    assert o.extra == {"cost_weight": 0.3, "cost_scale": 1.0}  # λ per USD, costs in USD
    assert o.task.category is None, "the category is not revealed to the policy"
    assert "quality" not in str(o.candidates[0].descriptor)
    assert [f.quality for f in spy.fed] == t.quality[:, 1].tolist()
    assert all(f.decision.chosen == "opt1" for f in spy.fed)


def test_drift_permutes_outcomes_from_step_n() -> None:
    t = synthetic_table(40)
    res = replay(t, Spy("opt0"), drift_at=25)
    perm = res.permutation
    assert perm is not None and sorted(perm) == [0, 1, 2] and all(perm[j] != j for j in range(3))
    assert res.quality[:25].tolist() == t.quality[:25, 0].tolist()
    assert res.quality[25:].tolist() == t.quality[25:, perm[0]].tolist()
    full = outcome_matrix(t, res.rows, 25, perm, 0.0, 1.0)
    assert np.array_equal(full[25:, 0], t.quality[25:, perm[0]])


@given(k=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_derangement_moves_every_option(k: int, seed: int) -> None:
    p = derangement(k, np.random.default_rng(seed))
    assert sorted(p) == list(range(k)) and all(p[j] != j for j in range(k))


def test_summary_compares_with_the_best_single_option_in_hindsight() -> None:
    t = synthetic_table(300)
    res = replay(t, Cheapest(), cost_weight=0.5)
    s = summarize(res, t, warmup=100)
    r = t.quality - 0.5 * t.cost  # λ per USD
    best = r[100:].mean(axis=0)
    assert s["best_single_after_warmup"] == pytest.approx(best.max())
    assert s["best_single_option"] == t.options[int(best.argmax())]
    assert s["mean_reward_after_warmup"] == pytest.approx(r[100:, 0].mean())
    assert s["ratio_to_best"] == pytest.approx(r[100:, 0].mean() / best.max())


def test_pheromone_learns_and_recovers_after_drift() -> None:
    t = synthetic_table(1600, seed=4)
    pol = make_policy("pheromone", t, seed=0)
    res = replay(t, pol, order="shuffle", seed=0, drift_at=800)
    s = summarize(res, t, warmup=300)
    assert s["ratio_to_best"] > 0.9
    assert s["recovery_steps"] is not None and s["recovery_steps"] < 400
    assert s["ratio_after_recovery"] > 0.9


@pytest.mark.parametrize("name", ["pheromone", "bandit", "random", "cheapest", "strongest"])
def test_every_named_policy_replays(name: str) -> None:
    t = synthetic_table(60)
    res = replay(t, make_policy(name, t, seed=1, cost_weight=0.1), cost_weight=0.1, order="shuffle", seed=1)
    assert len(res.rows) == 60 and set(res.chosen.tolist()) <= {0, 1, 2}


def test_a_fitted_policy_file_replays(tmp_path: Path) -> None:
    from agentroute.policies import make_router

    t = synthetic_table(120)
    make_router("cheapest", seed=0).fit(t).save(tmp_path / "lin")
    res = replay(t, make_policy(str(tmp_path / "lin"), t), limit=30)
    assert len(res.rows) == 30


@pytest.mark.parametrize(
    ("kw", "err"),
    [({"order": "random"}, ConfigError), ({"cost_weight": -1.0}, ConfigError), ({"drift_at": 99}, ConfigError)],
)
def test_replay_validation(kw: dict[str, Any], err: type[Exception]) -> None:
    with pytest.raises(err):
        replay(synthetic_table(10), Random(0), **kw)


def test_unknown_policy_and_bad_choice() -> None:
    t = synthetic_table(10)
    with pytest.raises(ConfigError, match="unknown replay policy"):
        make_policy("nonesuch", t)
    from agentroute.errors import PolicyError

    with pytest.raises(PolicyError):
        replay(t, Spy("not-an-option"))
    empty = t.subset([])
    with pytest.raises(DataError):
        replay(empty, Random(0))


def test_candidates_are_ranked_by_mean_cost() -> None:
    t = synthetic_table(10, costs=(0.004, 0.001, 0.002))
    cs = candidates_of(t)
    assert [c.id for c in cs] == ["opt1", "opt2", "opt0"] and [c.rank for c in cs] == [0, 1, 2]


@pytest.mark.slow
def test_routerbench_stream_reaches_the_best_single_option(data_dir: Path) -> None:
    from agentroute.data import load_builtin

    t = load_builtin("routerbench").subset(np.random.default_rng(0).permutation(2205)[:1200])
    lam = 0.5 / t.cost_scale()  # λ per USD: 0.5 in units of the table's cost scale
    res = replay(t, make_policy("pheromone", t, seed=0, cost_weight=lam), cost_weight=lam)
    s = summarize(res, t, warmup=300)
    assert s["ratio_to_best"] >= 0.9, s
