"""The decision fast path (cached fusion, lazy evidence), the affine utility signal, and the bandit's empty start."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest
from _pher_helpers import cands, obs, synthetic_table

from agentroute._telemetry_attrs import to_json
from agentroute.errors import ConfigError
from agentroute.features import HashingFeaturizer
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneTable
from agentroute.policies._pheromone_worker import PheromoneUpdate
from agentroute.policies.bandit import LinUCBPolicy, ThompsonPolicy
from agentroute.policies.pheromone import PheromonePolicy
from agentroute.replay import make_policy, replay
from agentroute.routing import Feedback


def test_a_cached_fusion_follows_every_table_write() -> None:
    p = PheromonePolicy(mode="greedy", task_types=["x", "y"], tau0=0.5, eta={"load": 0.0}, rho=0.5,
                        drift_threshold=None)
    c = cands()
    o1 = obs("t1", c, intent={"x": 0.5, "y": 0.5})
    o2 = obs("t2", c, intent={"x": 0.5, "y": 0.5})
    first = p.decide(o1)
    assert p.decide(o2).probabilities == first.probabilities  # same mixture: same numbers
    for target in ("b", "c", "a"):
        p.table.apply([EdgeUpdate(("y", "model", "", o), 1.0, 1.0 if o == target else 0.0) for o in "abc"] * 8)
        d = p.decide(o2)
        assert d.chosen == target, (target, d.evidence["tau"])
        assert d.evidence["tau"][target] == pytest.approx(0.5 * 0.5 + 0.5 * p.table.level(("y", "model", "",
                                                                                             target)))


def test_cached_and_fresh_decisions_agree() -> None:
    """A policy that reuses its cache gives the same P as a fresh policy reading the same table."""
    table = PheromoneTable()
    rng = np.random.default_rng(0)
    table.apply([EdgeUpdate((t, "model", "", o), 1.0, float(rng.random())) for t in ("x", "y") for o in "abc"])
    warm = PheromonePolicy(store=table, task_types=["x", "y"], seed=0)
    o = obs("t", cands(costs=[0.001, 0.002, 0.003]), intent={"x": 0.3, "y": 0.7},
            extra={"cost_weight": 0.5, "cost_scale": 0.003})
    for _ in range(3):
        warm.decide(o)  # fills (and reuses) the cache; the load term moves P as decisions wait
    fresh = PheromonePolicy(store=table, task_types=["x", "y"], seed=0)
    for cid in "abc":  # the same number of decisions waiting on each option
        fresh._inflight[cid] = warm._inflight.get(cid, 0)
    a, b = warm.decide(o), fresh.decide(o)
    assert a.probabilities == pytest.approx(b.probabilities) and a.scores == pytest.approx(b.scores)


def test_table_version_moves_on_every_write() -> None:
    t = PheromoneTable()
    v0 = t.version
    t.apply([EdgeUpdate(("x", "m", "", "a"), 1.0, 0.5)])
    v1 = t.version
    assert v1 > v0
    t.restore(t.export())
    assert t.version > v1
    v2 = t.version
    t.clear()
    assert t.version > v2


def test_evidence_is_built_when_read_and_serialises() -> None:
    p = PheromonePolicy(seed=0, task_types=["x"])
    d = p.decide(obs(candidates=cands(costs=[0.001, 0.002, 0.004], latency=0.3),
                     extra={"cost_weight": 0.5, "cost_scale": 0.004}))
    plain = dict(d.evidence)
    assert set(plain) == {"tau", "eta", "weights", "intent_source", "prev", "selection"}
    assert plain == d.evidence.as_dict()  # type: ignore[attr-defined]
    assert set(plain["eta"]) >= {"price", "latency", "uncertainty"}
    assert plain["eta"]["price"]["a"] == 1.0 and plain["eta"]["price"]["c"] < 1.0
    assert json.loads(json.dumps(plain))["tau"] == plain["tau"]
    assert json.loads(to_json(d.evidence, redact=False)) == json.loads(json.dumps(plain))
    plain["weights"]["x"] = 0.0  # a copy: the shared mixture is untouched
    assert p.decide(obs("t2", intent={"x": 1.0})).evidence["weights"] == {"x": 1.0}
    with pytest.raises(KeyError):
        d.evidence["nope"]


def _u(quality: float, cost: float, lam: float = 0.5, scale: float = 1.0) -> PheromoneUpdate:
    return PheromoneUpdate("t", "model", "a", {"x": 1.0}, quality, cost, "", lam, scale)


def test_utility_signal_maps_the_reward_affinely() -> None:
    p = PheromonePolicy(cost_span=1.0)
    assert p._signal(_u(1.0, 1.0)) == pytest.approx((1 - 0.5 + 0.5) / 1.5)
    assert p._signal(_u(0.0, 1.0)) == pytest.approx(0.0)
    assert p._signal(_u(1.0, 0.0)) == pytest.approx(1.0)
    assert p._signal(_u(0.7, 0.2, lam=0.0)) == pytest.approx(0.7), "λ = 0: the signal is the quality"
    rewards = [(q, c) for q in (0.0, 0.4, 1.0) for c in (0.0, 0.3, 0.9)]
    sig = sorted(rewards, key=lambda r: p._signal(_u(*r)))
    assert sig == sorted(rewards, key=lambda r: r[0] - 0.5 * r[1]), "the order of rewards is kept"
    old = PheromonePolicy(cost_span=0.0)
    assert old._signal(_u(1.0, 0.4)) == pytest.approx(0.8)
    with pytest.raises(ConfigError):
        PheromonePolicy(cost_span=-1.0)


def test_the_affine_signal_ranks_by_mean_reward_where_clipping_does_not() -> None:
    """A pricey option that fails often: clipping at 0 hides its cost on failures; the affine map does not."""
    lam, scale = 0.5, 1.0
    pricey = [(1.0, 1.0)] * 6 + [(0.0, 1.0)] * 4  # mean reward 0.6 − 0.5 = 0.1
    cheap = [(1.0, 0.1)] * 2 + [(0.0, 0.1)] * 8  # mean reward 0.2 − 0.05 = 0.15: the better option

    def mean(pol: PheromonePolicy, rows: list[tuple[float, float]]) -> float:
        return sum(min(1.0, max(0.0, pol._signal(_u(q, c, lam, scale)))) for q, c in rows) / len(rows)

    affine, clipped = PheromonePolicy(cost_span=1.0), PheromonePolicy(cost_span=0.0)
    assert mean(affine, cheap) > mean(affine, pricey)
    assert mean(clipped, cheap) < mean(clipped, pricey)


def test_bandit_empty_starts_from_the_priors() -> None:
    t = synthetic_table(80)
    feat = HashingFeaturizer(256, n_components=8, use_category=False).fit(t.texts)
    b = LinUCBPolicy.empty(t.options, feat, cost_weight=0.2, cost_scale=t.cost_scale())
    assert b.counts.tolist() == [0.0, 0.0, 0.0] and b.a_inv.shape == (3, feat.dim + 1, feat.dim + 1)
    o = obs("q0", cands(t.options, costs=[0.001, 0.002, 0.004]), text=t.texts[0])
    d = b.decide(o)
    b.feedback(Feedback(o, d, Decimal("0.001"), 0, 0.0, quality=1.0))
    assert b.counts.sum() == 1
    ts = ThompsonPolicy.empty(t.options, feat, n_prob_samples=8)
    assert isinstance(ts, ThompsonPolicy) and ts.n_prob_samples == 8
    assert sum(ts.decide(o).probabilities.values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        LinUCBPolicy.empty(t.options, HashingFeaturizer(256, n_components=8))  # not fitted
    with pytest.raises(ConfigError):
        LinUCBPolicy.empty(["a", "a"], feat)
    with pytest.raises(ConfigError):
        LinUCBPolicy.empty([], feat)


def test_replay_bandit_starts_empty() -> None:
    t = synthetic_table(60)
    lam = 0.5 / t.cost_scale()  # λ per USD: 0.5 in units of the table's cost scale
    b = make_policy("bandit", t, seed=0, cost_weight=lam)
    assert float(np.sum(b.counts)) == 0.0, "nothing learnt before the stream"
    res = replay(t, b, cost_weight=lam, order="shuffle", seed=0)
    assert float(np.sum(b.counts)) == len(res.rows) and math.isfinite(float(res.reward.mean()))
