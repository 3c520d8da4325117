"""Many options, heavy-tailed costs: the pooled estimate's priors, elimination and the 24-option stream."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pher_helpers import obs
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.data.streams import heavy_tailed, many_option_stream
from agentroute.errors import ConfigError
from agentroute.policies import load_policy, save_policy
from agentroute.policies._pheromone_prior import PRICE_GAP, effective_visits, estimate, priors, use_pooled
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneParams
from agentroute.policies._pheromone_worker import PheromoneUpdate
from agentroute.policies.pheromone import PheromonePolicy
from agentroute.replay import make_policy, outcome_matrix, replay
from agentroute.routing import Candidate, Feedback

LAM = 0.3  # per USD


def _cands(prices: list[float], ability: list[float | None] | None = None) -> tuple[Candidate, ...]:
    return tuple(
        Candidate(f"o{j}", "model", rank=j, cost_estimate=Decimal(repr(p)),
                  descriptor={} if ability is None or ability[j] is None else {"ability": ability[j]})
        for j, p in enumerate(prices))


def _utility(span: float = 1.0) -> Any:
    from agentroute.policies._pheromone_math import utility

    return lambda u: utility(u, span)


def test_priors_put_an_expensive_option_where_its_price_puts_it() -> None:
    params = PheromoneParams()
    pri = priors(["cheap", "dear", "known"], [0.03, 3.0, 0.3], [{}, {}, {"ability": 0.6}], _utility(),
                 params, LAM * 3.0, 3.0, 3.0)
    # no ability: optimistic (quality 1) at its price; the ceiling is the same point
    assert pri.prior[0] == pytest.approx(pri.ceiling[0]) and pri.prior[1] == pytest.approx(pri.ceiling[1])
    assert pri.ceiling[1] < pri.ceiling[0], "a $3 option cannot look as good as a 3-cent one at λ = 0.3/USD"
    span = 1.0 + LAM * 3.0  # the utility signal's width at cost_span 1 (in $3 units)
    assert pri.ceiling[0] - pri.ceiling[1] == pytest.approx(LAM * (3.0 - 0.03) / span)
    # an ability descriptor gives the prior at that quality, worth prior_weight visits
    assert pri.prior[2] == pytest.approx(pri.bottom[2] + 0.6 * 2 * pri.spread[2]) and pri.weight[2] == 3.0
    assert pri.weight[0] == params.prior_visits and pri.fixed == [False, False, True]


def test_pooled_decisions_read_the_price_aware_prior_before_any_outcome() -> None:
    p = PheromonePolicy(seed=0, estimate="pooled", asynchronous=False)
    cs = _cands([0.03, 0.3, 3.0])
    d = p.decide(obs("t", cs, extra={"cost_weight": LAM}))
    tau = d.evidence["tau"]
    assert tau["o0"] > tau["o1"] > tau["o2"], tau
    assert d.chosen == "o0" or d.explored


def test_a_dominated_option_gets_probability_zero_and_the_best_is_kept() -> None:
    p = PheromonePolicy(seed=0, estimate="pooled", asynchronous=False, task_types=["x"])
    cs = _cands([0.05, 0.05, 2.5])
    u = _utility()
    for _ in range(40):  # o0 always right, o1 always wrong: o1 is dominated; o2's price alone dominates it
        for cid, q in (("o0", 1.0), ("o1", 0.0)):
            sig = u(PheromoneUpdate("", "model", cid, {"x": 1.0}, q, 0.05, "", LAM, 1.0))
            p.table.apply([EdgeUpdate(("x", "model", "", cid), 1.0, sig)])
    d = p.decide(obs("t", cs, extra={"cost_weight": LAM}))
    assert d.probabilities["o1"] == 0.0 and d.probabilities["o2"] == 0.0
    assert d.chosen == "o0" and d.probabilities["o0"] == 1.0
    lvl = p.decide(obs("t2", cs, extra={"cost_weight": LAM}))
    assert lvl.probabilities == d.probabilities, "a dominated option stays out while nothing changes"


@settings(max_examples=12)
@given(k=st.integers(3, 30), seed=st.integers(0, 10_000), gap=st.floats(0.25, 0.6))
def test_elimination_never_drops_the_best_option_of_a_clear_winner_stream(k: int, seed: int, gap: float) -> None:
    rng = np.random.default_rng(seed)
    prices = np.exp(rng.uniform(np.log(0.03), np.log(3.0), k))
    best = int(rng.integers(k))
    prices[best] = min(prices[best], 0.3)
    pq = rng.uniform(0.05, 0.95 - gap, k)
    reward = pq - LAM * prices
    pq[best] = min(1.0, max(reward.max() + LAM * prices[best] + gap, 0.0))  # best by at least `gap` in reward
    cs = _cands([float(x) for x in prices])
    pol = PheromonePolicy(seed=seed, estimate="pooled", asynchronous=False)
    for i in range(120):
        o = obs(f"t{i}", cs, extra={"cost_weight": LAM})
        d = pol.decide(o)
        assert d.probabilities[f"o{best}"] > 0.0, (i, d.probabilities)
        j = int(d.chosen[1:])
        pol.feedback(Feedback(o, d, Decimal(repr(float(prices[j]))), 0, 0.0, quality=float(rng.random() < pq[j])))


def _ratio(table: Any, seed: int, **kw: Any) -> float:
    pol = make_policy("pheromone", table, seed=seed, cost_weight=LAM, **kw)
    res = replay(table, pol, cost_weight=LAM, order="shuffle", seed=seed)
    best = outcome_matrix(table, res.rows, None, None, LAM).mean(axis=0).max()
    return float(res.reward.mean() / best)


@pytest.mark.slow
def test_a_24_option_stream_reaches_0_9_of_the_best_single_option() -> None:
    ratios = []
    for s in (0, 1, 2):
        t = many_option_stream(500, seed=s)
        assert t.n_options == 24
        ratios.append(_ratio(t, s, descriptors=t.meta["descriptors"]))
    assert float(np.mean(ratios)) >= 0.9, ratios


@pytest.mark.slow
def test_a_24_option_stream_reaches_0_9_on_prices_alone() -> None:
    ratios = [_ratio(many_option_stream(500, seed=s), s) for s in (0, 1, 2)]
    assert float(np.mean(ratios)) >= 0.9, ratios


def test_auto_reads_the_pooled_estimate_with_many_options_or_a_large_price_gap() -> None:
    assert use_pooled("auto", [0.03] * 12, 0.0) and not use_pooled("auto", [0.03] * 11, 0.0)
    assert use_pooled("auto", [0.03, 3.0], LAM), "λ·Δprice = 0.89 of a perfect answer"
    assert not use_pooled("auto", [0.03, 3.0], 0.5 / 2.97)  # λ·Δprice = 0.5: the long replays of the shared tables
    assert not use_pooled("auto", [None, None], 100.0) and not use_pooled("level", [0.03] * 30, LAM)
    assert use_pooled("pooled", [0.03], 0.0) and PRICE_GAP == 0.75
    p = PheromonePolicy(seed=0, asynchronous=False)  # estimate="auto"
    cs = _cands([0.03, 0.3, 3.0])
    tau = p.decide(obs("t", cs, extra={"cost_weight": LAM})).evidence["tau"]
    assert tau["o0"] > tau["o1"] > tau["o2"], "the gap is large: priced priors"
    flat = p.decide(obs("t2", cs, extra={"cost_weight": 0.01})).evidence["tau"]
    assert flat["o0"] == flat["o1"] == flat["o2"], "the gap is small: the levels (τ0 everywhere)"


def test_an_edge_counts_at_most_the_visits_its_average_remembers() -> None:
    params = PheromoneParams()
    assert effective_visits(params) == pytest.approx((2 - 0.02) / 0.02)
    assert effective_visits(PheromoneParams(rho=0.0)) == float("inf")
    p = PheromonePolicy(seed=0, estimate="pooled", asynchronous=False, task_types=["x"])
    p.table.apply([EdgeUpdate(("x", "model", "", "o0"), 1.0, 0.5)] * 1000)
    pri = priors(["o0"], [0.05], [{}], _utility(), p.params, LAM, 1.0, 3.0)
    est = estimate(p.table, ["x"], {"x": 1.0}, "model", "", 0.0, ["o0"], pri, optimism=0.5, pool=4.0,
                   eliminate=2.5, min_visits=3.0)
    assert est.visits[0] == pytest.approx(effective_visits(p.params) + p.params.prior_visits)


@pytest.mark.slow
def test_the_pooled_estimate_beats_the_levels_on_prices_alone() -> None:
    pooled, level = [], []
    for s in (0, 1, 2):
        t = many_option_stream(500, seed=s)
        pooled.append(_ratio(t, s))
        level.append(_ratio(t, s, estimate="level"))
    assert np.mean(pooled) > np.mean(level) + 0.05, (pooled, level)


def test_streams_are_seeded_and_heavy_tailed() -> None:
    a, b = many_option_stream(200, seed=7), many_option_stream(200, seed=7)
    assert np.array_equal(a.quality, b.quality) and np.array_equal(a.cost, b.cost)
    means = a.cost.mean(axis=0)
    assert set(np.unique(a.quality)) <= {0.0, 1.0}
    assert 30 < means.max() / means.min() < 300
    assert "quality" not in str(a.meta["descriptors"])
    mix = np.bincount([int(str(c).split("-")[1]) for c in a.categories], minlength=6)
    assert mix[0] > 2 * mix[-1], "the task-type mix is skewed"
    with pytest.raises(ConfigError):
        many_option_stream(10, options=1)


def test_heavy_tailed_maps_prices_and_keeps_outcomes() -> None:
    t = many_option_stream(100, seed=1, price_span=4.0)
    h = heavy_tailed(t, price_low=0.02, price_span=200.0)
    assert np.array_equal(h.quality, t.quality)
    means = h.cost.mean(axis=0)
    assert means.min() == pytest.approx(0.02) and means.max() == pytest.approx(4.0)
    assert list(np.argsort(means)) == list(np.argsort(t.cost.mean(axis=0)))
    assert "mapped per option" in h.meta["cost_basis"]


@pytest.mark.parametrize("kw", [{"estimate": "fancy"}, {"optimism": -1.0}, {"eliminate": 0.0}, {"pool": -1.0},
                                {"prior_weight": 0.0}, {"descriptors": {"a": 0.5}}, {"descriptors": [1]}])
def test_many_option_settings_are_validated(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PheromonePolicy(**kw)


def test_the_settings_survive_a_card_and_an_old_card_keeps_its_levels(tmp_path: Path) -> None:
    p = PheromonePolicy(seed=0, estimate="pooled", optimism=0.7, eliminate=None, pool=9.0,
                        descriptors={"o1": {"ability": 0.4}})
    path = save_policy(p, tmp_path / "c.json")
    q = load_policy(path)
    assert isinstance(q, PheromonePolicy)
    assert (q.estimate, q.optimism, q.eliminate, q.pool, q.descriptors) == ("pooled", 0.7, None, 9.0,
                                                                             {"o1": {"ability": 0.4}})
    card = json.loads(path.read_text(encoding="utf-8"))
    assert not q.observe_latency and not q.price_prior
    for key in ("estimate", "optimism", "eliminate", "pool", "prior_weight", "min_visits", "price_prior",
                "descriptors", "observe_latency"):
        card["config"].pop(key)
    path.write_text(json.dumps(card), encoding="utf-8")
    old = load_policy(path)
    assert isinstance(old, PheromonePolicy) and old.estimate == "level"
    assert old.observe_latency and old.price_prior, "an old card keeps what it did"
