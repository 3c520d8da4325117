"""Holding a policy to a spend or strong-share target online (TargetSpend / TargetShare).

The stream is stationary and synthetic: every query draws a value per option (dearer options better on average), the
wrapped policy takes ``argmax value − λ·price`` at the λ it is handed, so the rate it would reach at any fixed λ is
known by simulation. Targets are drawn as that rate at a random λ* (so they are reachable), and the controller starts
far from λ*.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from learn_helpers import make_table

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.errors import ConfigError
from agentroute.policies import TargetShare, TargetSpend, load_policy, save_policy
from agentroute.policies._cost import decision_cost_weight
from agentroute.policies.target import Controller
from agentroute.replay import make_policy, replay, summarize
from agentroute.routing import Candidate, Decision, Feedback, Observation, PolicyBase, TaskInfo, TaskOutcome, one_hot

FREE = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())


class Scorer(PolicyBase):
    """``argmax value − λ·price`` with the values the stream put on the task; records what it was handed."""

    name = "scorer"

    def __init__(self, cost_weight: float = 0.0) -> None:
        self.cost_weight = cost_weight
        self.seen: list[float] = []
        self.fed: list[Observation] = []

    def decide(self, obs: Observation) -> Decision:
        lam = decision_cost_weight(obs, self.cost_weight)
        self.seen.append(lam)
        v = obs.task.features["v"]
        best = max(obs.candidates, key=lambda c: v[c.id] - lam * float(c.cost_estimate or 0))
        return Decision(best.id, one_hot(obs, best.id), reason=f"scorer: {best.id}")

    def feedback(self, fb: Feedback) -> None:
        self.fed.append(fb.observation)


class Stream:
    """A stationary stream: ``k`` options priced ``geomspace(1e-4, 1e-4·spread)``, values ``base + N(0, 0.5²)``."""

    def __init__(self, k: int, spread: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.prices = np.geomspace(1e-4, 1e-4 * spread, k)
        self.base = np.sort(rng.random(k))
        self.ids = [f"o{j}" for j in range(k)]
        self.cands = tuple(Candidate(i, "model", rank=j, cost_estimate=Decimal(repr(float(p))))
                           for j, (i, p) in enumerate(zip(self.ids, self.prices, strict=True)))
        self.rng = rng

    def rate_at(self, lam: float, share: bool, n: int = 4000) -> float:
        """The rate the scorer reaches at a fixed λ (a separate sample of the same stream)."""
        v = self.base[None, :] + 0.5 * np.random.default_rng(99).standard_normal((n, len(self.prices)))
        idx = np.argmax(v - lam * self.prices[None, :], axis=1)
        return float(np.mean(idx == len(self.prices) - 1)) if share else float(self.prices[idx].mean())

    def run(self, policy: Any, n: int) -> list[str]:
        chosen = []
        for t in range(n):
            v = {i: float(self.base[j] + 0.5 * self.rng.standard_normal()) for j, i in enumerate(self.ids)}
            obs = Observation(TaskInfo(f"t{t}", "", None, {"v": v}), "model", "m", "n", 0, (), FREE, self.cands)
            d = policy.decide(obs)
            cost = self.prices[self.ids.index(d.chosen)] * float(self.rng.uniform(0.5, 1.5))
            usd = Decimal(repr(float(cost)))
            policy.feedback(Feedback(obs, d, usd, 0, 0.0, 1.0))
            policy.on_task_end(TaskOutcome(f"t{t}", 1.0, usd, 0, True, False, "completed"))
            chosen.append(d.chosen)
        return chosen


@settings(max_examples=12)
@given(k=st.integers(2, 24), spread=st.sampled_from([2.0, 10.0, 100.0]), log_star=st.floats(-1.0, 1.2),
       log_start=st.floats(-3.0, 3.0), share=st.booleans(), seed=st.integers(0, 2**16))
def test_after_the_warm_up_the_realised_rate_is_within_tolerance_of_the_target(
    k: int, spread: float, log_star: float, log_start: float, share: bool, seed: int
) -> None:
    s = Stream(k, spread, seed)
    natural = 0.1 / s.prices[-1]
    target = s.rate_at(natural * 10**log_star, share)
    if share:
        assume(0.05 <= target <= 0.95)  # a share of a few queries in a thousand is noise, not a target
    start = natural * 10**log_start  # up to 1000x off either way
    w = (TargetShare(Scorer(), strong_share=target, warmup=200, start=start) if share else
         TargetSpend(Scorer(), usd_per_task=target, warmup=200, start=start))
    s.run(w, 1200)
    st_ = w.status()
    assert st_["units"] == 1200
    assert abs(st_["realised"] - target) <= 0.1 * target, st_
    assert st_["within_tolerance"] is True


def test_the_rate_error_after_the_warm_up_is_exactly_the_travel_of_log_lambda() -> None:
    """The integral identity: m·η·(mean(x)/target − 1) = Δ(log λ + carried), whatever the stream."""
    c = Controller(target=2.0, step=0.1, warmup=10)
    c.start(1.0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        c.update(float(rng.exponential(2.0)))
    eta, lam0, carry0, m = c.gain(), c.log_lam, c.carry, 300
    assert lam0 is not None
    for _ in range(m):
        c.update(float(rng.exponential(2.0)))
        assert c.gain() == eta  # constant after the warm-up
    assert c.log_lam is not None and c.realised is not None
    assert math.isclose(m * eta * (c.realised / 2.0 - 1.0), (c.log_lam - lam0) + (c.carry - carry0), rel_tol=1e-9)


def test_an_unreachable_target_is_reported_missed_and_lambda_stays_bounded() -> None:
    s = Stream(3, 10.0, seed=1)
    w = TargetSpend(Scorer(), usd_per_task=float(s.prices[0]) / 2, warmup=50)  # below the cheapest option
    s.run(w, 400)
    st_ = w.status()
    assert st_["within_tolerance"] is False
    assert st_["realised"] > s.prices[0] * 0.5 * 1.1
    c = w.control
    assert c.log_lam is not None and c.log_lam <= c.origin + c.span + 1e-9  # pinned, not wound up


def test_the_wrapped_policy_decides_at_the_wrappers_lambda_and_learns_with_what_it_saw() -> None:
    inner = Scorer(cost_weight=5.0)
    w = TargetSpend(inner, usd_per_task=1e-4, warmup=0)
    s = Stream(2, 10.0, seed=2)
    s.run(w, 20)
    assert inner.seen[0] == pytest.approx(5.0)  # starts from the wrapped policy's own λ
    assert inner.seen[-1] != pytest.approx(5.0)
    assert len(inner.fed) == 20
    assert all(o.extra["cost_weight"] == pytest.approx(lam) for o, lam in zip(inner.fed, inner.seen, strict=True))
    d = w.decide(Observation(TaskInfo("x", "", None, {"v": {"o0": 0.0, "o1": 1.0}}), "model", "m", "n", 0, (),
                             FREE, s.cands))
    assert d.reason.startswith("target $0.0001/task at λ=")
    assert d.evidence["target"]["kind"] == "spend"
    assert d.evidence["target"]["cost_weight"] == pytest.approx(w.cost_weight)


def test_a_share_target_counts_the_strong_option_by_name_or_the_dearest() -> None:
    s = Stream(3, 10.0, seed=3)
    w = TargetShare(Scorer(), strong_share=0.3, warmup=0)
    chosen = s.run(w, 50)
    assert w.strong == "o2"
    assert w.control.total == chosen.count("o2")
    w2 = TargetShare(Scorer(), strong_share=0.3, strong="o1", warmup=0)
    chosen = s.run(w2, 50)
    assert w2.control.total == chosen.count("o1") + chosen.count("o2")  # the strong option or a dearer one


@pytest.mark.parametrize(("build", "field"), [
    (lambda: TargetSpend(Scorer(), usd_per_task=0.0), "usd_per_task"),
    (lambda: TargetSpend(Scorer(), usd_per_task=math.nan), "usd_per_task"),
    (lambda: TargetShare(Scorer(), strong_share=1.0), "strong_share"),
    (lambda: TargetShare(Scorer(), strong_share=-0.1), "strong_share"),
    (lambda: TargetSpend(Scorer(), usd_per_task=1.0, tolerance=0.0), "tolerance"),
    (lambda: TargetSpend(Scorer(), usd_per_task=1.0, warmup=-1), "warmup"),
    (lambda: TargetSpend(object(), usd_per_task=1.0), "policy"),
])
def test_a_bad_target_is_a_config_error_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        build()
    assert e.value.name == field


def test_saved_and_loaded_it_continues_where_it_was(tmp_path: Path) -> None:
    table = make_table(300, seed=4)
    bandit = make_policy("bandit", table, seed=0)
    w = TargetSpend(bandit, usd_per_task=float(table.cost.mean()), warmup=20)
    replay(table, w, limit=60)
    save_policy(w, tmp_path / "held")
    back = load_policy(tmp_path / "held")
    assert isinstance(back, TargetSpend)
    assert back.status() == w.status()
    a = replay(table, w, order="shuffle", seed=5, limit=80)
    b = replay(table, back, order="shuffle", seed=5, limit=80)
    assert list(a.chosen) == list(b.chosen)
    assert back.cost_weight == pytest.approx(w.cost_weight)


def test_a_replay_reports_the_target_and_the_realised_rate_from_its_own_steps() -> None:
    table = make_table(600, seed=5)
    target = float(np.median(table.cost.mean(axis=0)))
    res = replay(table, TargetSpend(make_policy("pheromone", table, seed=0), usd_per_task=target, warmup=100),
                 order="shuffle", seed=1)
    s = summarize(res, table)
    t = s["target"]
    assert t["kind"] == "spend" and t["target"] == target and t["held"] == "online"
    assert t["realised"] == pytest.approx(float(res.cost[100:].mean()))
    assert t["within_tolerance"] == (abs(t["realised"] - target) <= 0.1 * target)
    assert t["within_tolerance"] is True
    share = replay(table, TargetShare(make_policy("bandit", table, seed=0), strong_share=0.25), order="shuffle")
    t = summarize(share, table)["target"]
    assert t["strong"] == "large"
    assert t["realised"] == pytest.approx(float(np.mean(share.chosen[100:] == table.options.index("large"))))
    assert t["within_tolerance"] is True
    assert "target" not in summarize(replay(table, make_policy("bandit", table), limit=50), table)


class _Threshold(PolicyBase):
    """The large tier while λ·(its cost estimate) is below ``gain``, else the small one."""

    name = "threshold"

    def __init__(self, gain: float) -> None:
        self.gain = gain

    def decide(self, obs: Observation) -> Decision:
        lam = decision_cost_weight(obs, 1.0)
        dear = max(obs.candidates, key=lambda c: c.rank)
        pick = dear if lam * float(dear.cost_estimate or 0) < self.gain else min(obs.candidates, key=lambda c: c.rank)
        return Decision(pick.id, one_hot(obs, pick.id), reason=f"threshold: {pick.id}")


def test_in_graph_runs_each_task_spend_moves_lambda_and_the_record_carries_the_target() -> None:
    import agentroute as ar
    from agentroute.testing import Say, Scripted

    tiers = (ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o"))
    g = ar.AgentGraph("held")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": "q"}]).text}, tiers=tiers)
    g.start("ask")
    costs: dict[str, float] = {}
    probe = g.compile(policy=ar.policies.Fixed("small"), provider=Scripted({"*": [Say("fine " * 20)]}))
    for tier in ("small", "large"):
        res = probe.run({}, budget=ar.Budget(usd="1"), policy=ar.policies.Fixed(tier))
        costs[tier] = float(res.spent.usd or 0)
    assert 0 < costs["small"] < costs["large"]
    target = 0.5 * (costs["small"] + costs["large"])
    held = TargetSpend(_Threshold(gain=0.5), usd_per_task=target, warmup=40, start=30.0)  # λ* ≈ 100
    app = g.compile(policy=held, provider=Scripted({"*": [Say("fine " * 20)]}))
    chosen = []
    for _ in range(200):
        res = app.run({}, budget=ar.Budget(usd="1"))
        (rec,) = [d for d in res.decisions if d.point == "ask.model"]
        chosen.append(rec.chosen)
    assert held.control.t == 200  # one unit per task end
    assert rec.reason.startswith(f"target ${target:.4g}/task at λ=") and rec.evidence["target"]["kind"] == "spend"
    assert {"small", "large"} <= set(chosen[40:])  # λ settled where the threshold splits the tasks
    assert held.within() is True, held.status()
