"""The routed frontier: its geometry (property tests), the sweep, and `agentroute memory frontier`."""

import itertools
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from mem_helpers import memory, write_conversations

from agentroute.cli import main
from agentroute.errors import ConfigError
from agentroute.memory import frontier as fr
from agentroute.memory.evaluate import combo_table

points = st.lists(
    st.fixed_dictionaries({"cost_usd": st.floats(0, 10), "evidence_recall": st.floats(0, 1)}), min_size=1, max_size=30
)


@given(points)
def test_front_is_rising_and_dominates_every_point(pts):
    f = fr.front(pts)
    assert all(c0 < c1 and e0 < e1 for (c0, e0), (c1, e1) in itertools.pairwise(f))
    for p in pts:
        r = fr.recall_at(f, p["cost_usd"])
        assert r is not None and r >= p["evidence_recall"] - 1e-12


@given(points, st.floats(0, 1))
def test_cost_to_reach_inverts_recall_at(pts, u):
    f = fr.front(pts)
    cost = f[0][0] + u * (f[-1][0] - f[0][0])
    r = fr.recall_at(f, cost)
    reach = fr.cost_to_reach(f, r)
    assert reach is not None and reach <= cost + 1e-9
    assert fr.cost_to_reach(f, f[-1][1] + 1e-6) is None
    assert fr.recall_at(f, f[0][0] - 1.0) is None


def test_targets_count_the_fixed_combinations_a_curve_matches():
    refs = {"all-low": {"cost_usd": 1.0, "evidence_recall": 0.5},
            "all-high": {"cost_usd": 10.0, "evidence_recall": 0.9}}
    curve = [{"cost_usd": 1.0, "evidence_recall": 0.55}, {"cost_usd": 5.0, "evidence_recall": 0.9}]
    fixed = [{"tiers": ["a"], "cost_usd": 3.0, "evidence_recall": 0.7},
             {"tiers": ["b"], "cost_usd": 3.0, "evidence_recall": 0.75}]
    t = fr.targets(curve, refs, fixed)
    assert t["cost_share_to_reach_all_high_recall"] == pytest.approx(0.5)
    assert t["recall_at_60pct_of_all_high_cost"] == pytest.approx(0.9)
    assert t["recall_at_all_low_cost"] == pytest.approx(0.55) and t["beats_all_low_at_its_cost"]
    assert t["fixed_combinations_matched_or_beaten"] == 1 and t["fixed_combinations_missed"] == [["b"]]  # 0.725 < 0.75


def test_sweep_fits_per_cost_weight_and_rejects_bad_input():
    mem = memory()
    data = fr.TrainingData([mem])
    lam = 50.0 / data.unit_usd  # λ per USD: 50 per 1,000 context tokens' worth
    pts = fr.sweep("rule", data, [mem], (0.0, lam))
    assert [p["cost_weight"] for p in pts] == [0.0, lam]
    assert pts[1]["cost_usd"] < pts[0]["cost_usd"]
    with pytest.raises(ConfigError, match="unknown memory policy family"):
        fr.sweep("oracle", data, [mem])
    with pytest.raises(ConfigError, match="cost weights"):
        fr.sweep("rule", data, [mem], (0.1, -1.0))
    table = combo_table([mem])
    ceil = fr.ceilings(table, data.unit_usd)
    q, c = fr.front(ceil["question oracle (ceiling)"]), fr.front(ceil["category oracle (ceiling)"])
    assert q[-1][1] >= c[-1][1]  # knowing each question beats knowing its category


def test_cli_frontier_writes_json_and_plot(tmp_path):
    convs = write_conversations(tmp_path / "convs", ("c1", "c2", "c3", "c4"))
    out = tmp_path / "front"
    r = CliRunner().invoke(main, ["memory", "frontier", "--conversations", str(convs), "--policy", "fitted-q",
                                  "--policy", "rule", "--cost-weights", "0,200,2000", "--limit", "5", "--out", str(out),
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "frontier.json").read_text())
    assert res["test"] == ["c4"] and res["train"] == ["c1", "c2", "c3"]
    assert set(res["curves"]) == {"fitted-q", "rule"} and len(res["curves"]["rule"]) == 3
    assert len(res["fixed_combinations"]) == 81
    assert {"fitted-q", "rule", "category oracle (ceiling)"} <= set(res["targets"])
    assert (out / "frontier.png").stat().st_size > 1000
    assert "fitted-q: reaches all-high's evidence recall" in r.output
    bad = CliRunner().invoke(main, ["memory", "frontier", "--conversations", str(convs), "--cost-weights", "a,b",
                                    "--out", str(out), "--quiet"])
    assert isinstance(bad.exception, ConfigError) and "--cost-weights" in str(bad.exception)


def _random_table(n: int, seed: int):
    import numpy as np

    from agentroute.memory.evaluate import COMBOS, ComboTable

    rng = np.random.default_rng(seed)
    m = len(COMBOS)
    ev = rng.random((n, m)).round(1)
    usd = rng.random((n, m)) * 1e-3 + 1e-4
    return ComboTable(tuple(("c", i) for i in range(n)), ("q",) * n, np.ones(n, dtype=np.int64), ev, ev,
                      usd, usd * 1e6)


@pytest.mark.slow
@settings(max_examples=20)  # each example brute-forces 3,240 pairs of the 81 combinations
@given(st.integers(1, 12), st.integers(0, 2**16))
def test_cascade_ceiling_with_a_perfect_verifier_keeps_the_better_context(n, seed):
    import numpy as np

    table = _random_table(n, seed)
    got = fr.cascade_ceilings(table, (1.0, 0.75, 0.5))
    perfect, mid, coin = got["cascade, perfect verifier (ceiling)"], got["cascade, 75%-accurate verifier (ceiling)"], \
        got["cascade, 50%-accurate verifier (ceiling)"]
    # Brute force: a perfect verifier escalates exactly where the second look adds recall; the best it can do is the
    # best pair's mean of per-question maxima.
    ev, usd = table.evidence, table.cost_usd
    order = np.argsort(usd.mean(axis=0), kind="stable")
    best = max(float(np.maximum(ev[:, a], ev[:, b]).mean()) for a, b in itertools.combinations(order, 2))
    assert perfect[-1]["evidence_recall"] == pytest.approx(best)
    coin_best = max(float(((ev[:, a] + ev[:, b]) / 2).mean()) for a, b in itertools.combinations(order, 2))
    assert coin[-1]["evidence_recall"] == pytest.approx(coin_best)  # a coin toss escalates half the questions
    # A better verifier reaches at least as high (its pairs' recalls are per-question maxima).
    assert perfect[-1]["evidence_recall"] >= mid[-1]["evidence_recall"] - 1e-12
    assert mid[-1]["evidence_recall"] >= coin[-1]["evidence_recall"] - 1e-12
    for pts in (perfect, mid, coin):
        assert [(p["cost_usd"], p["evidence_recall"]) for p in pts] == fr.front(pts)  # only the non-dominated


def test_cascade_ceiling_rejects_an_accuracy_outside_half_to_one():
    with pytest.raises(ConfigError, match="verifier accuracy"):
        fr.cascade_ceilings(_random_table(3, 0), (0.4,))
