"""The pheromone policy: selection and its propensities, η, intent, learning, credit, warm-up, validation."""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from _pher_helpers import cands, obs, synthetic_table
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.errors import ConfigError
from agentroute.policies._pheromone_intent import IntentModel
from agentroute.policies._pheromone_store import EdgeUpdate
from agentroute.policies.pheromone import PheromonePolicy
from agentroute.routing import Decision, Feedback, RouterPolicy


def fb(o: Any, d: Decision, quality: float | None, cost: float | None = 0.0, **kw: Any) -> Feedback:
    return Feedback(o, d, None if cost is None else Decimal(str(cost)), 0, kw.pop("latency", 0.0), quality=quality,
                    **kw)


def test_is_a_router_policy_and_decides_a_candidate() -> None:
    p = PheromonePolicy(seed=1)
    assert isinstance(p, RouterPolicy)
    d = p.decide(obs())
    assert d.chosen in ("a", "b", "c")
    assert sum(d.probabilities.values()) == pytest.approx(1.0)
    ev = d.evidence
    assert set(ev) >= {"tau", "eta", "weights", "intent_source", "selection"}
    assert ev["weights"] == {"default": 1.0} and set(ev["tau"]) == {"a", "b", "c"}


def test_probabilities_are_the_true_selection_frequencies() -> None:
    p = PheromonePolicy(seed=3, alpha=2.0, exploit=0.5, task_types=["x"])
    p.table.apply([EdgeUpdate(("x", "model", "", "a"), 1.0, 0.2), EdgeUpdate(("x", "model", "", "b"), 1.0, 0.6)])
    o = obs()
    n = 20_000
    counts: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    var: Counter[str] = Counter()
    for _ in range(n):  # the load term shifts P as decisions pile up: compare with the sum of the propensities
        d = p.decide(o)
        counts[d.chosen] += 1
        for cid, pr in d.probabilities.items():
            expected[cid] += pr
            var[cid] += pr * (1 - pr)
    assert len(expected) == 3
    for cid in expected:
        assert abs(counts[cid] - expected[cid]) < 5 * math.sqrt(var[cid]) + 1e-9, (cid, counts[cid], expected[cid])


def test_greedy_mode_is_one_hot_on_the_strongest_trail() -> None:
    p = PheromonePolicy(mode="greedy", task_types=["x"], tau0=0.5)
    p.table.apply([EdgeUpdate(("x", "model", "", "b"), 1.0, 1.0)] * 5)
    d = p.decide(obs())
    assert d.chosen == "b" and d.probabilities == {"a": 0.0, "b": 1.0, "c": 0.0}
    assert d.evidence["selection"] == "greedy" and not d.explored


def test_fused_tau_is_the_intent_weighted_mix() -> None:
    p = PheromonePolicy(task_types=["m", "c"], tau0=0.5, rho=0.0)
    p.table.apply([EdgeUpdate(("m", "model", "", "a"), 1.0, 1.0), EdgeUpdate(("c", "model", "", "a"), 1.0, 0.0)])
    d = p.decide(obs(intent={"m": 0.25, "c": 0.75}))
    assert d.evidence["weights"] == {"m": 0.25, "c": 0.75}
    assert d.evidence["tau"]["a"] == pytest.approx(0.25 * 0.75 + 0.75 * 0.25)
    assert d.evidence["tau"]["b"] == pytest.approx(0.5)


def test_eta_terms_price_ability_latency_load() -> None:
    p = PheromonePolicy(seed=0, eta={"ability": 1.0, "price": 1.0, "latency": 1.0, "load": 1.0})
    cs = cands(costs=[0.001, 0.002, 0.004], ability=[0.5, None, 1.0], latency=0.2)
    d0 = p.decide(obs("t0", cs))
    assert "price" not in d0.evidence["eta"], "price is neutral at λ = 0"
    assert d0.evidence["eta"]["ability"] == {"a": 0.5, "b": 1.0, "c": 1.0}
    d = p.decide(obs("t1", cs, extra={"cost_weight": 1.0, "cost_scale": 0.004}))
    price = d.evidence["eta"]["price"]
    assert price["a"] == 1.0 and price["a"] > price["b"] > price["c"]
    assert price["c"] == pytest.approx(math.exp(-1.0 * 0.003 / 0.004))
    # λ per USD (the one meaning): 250 per dollar is 1 per $0.004, the same price term
    usd = p.decide(obs("t1b", cs, extra={"cost_weight": 1.0 / 0.004})).evidence["eta"]["price"]
    assert usd["c"] == pytest.approx(price["c"]) and usd["b"] == pytest.approx(price["b"])
    assert "load" in d.evidence["eta"]  # two decisions are waiting for feedback
    p.feedback(fb(obs("t0", cs), d0, 1.0, latency=2.0))
    d2 = p.decide(obs("t2", cs))
    assert d2.evidence["eta"]["latency"] == {"a": 1.0, "b": 1.0, "c": 1.0}, "measured latency is opt-in"


def test_observed_latency_moves_eta_when_opted_in() -> None:
    p = PheromonePolicy(seed=0, eta={"latency": 1.0}, observe_latency=True)
    cs = cands(costs=[0.001, 0.002, 0.004], latency=0.2)
    d0 = p.decide(obs("t0", cs))
    p.feedback(fb(obs("t0", cs), d0, 1.0, latency=2.0))
    lat = p.decide(obs("t2", cs)).evidence["eta"]["latency"]
    assert lat[d0.chosen] == pytest.approx((0.2 + 0.05) / (2.0 + 0.05))  # observed 2 s vs estimated 0.2 s
    assert all(v == 1.0 for k, v in lat.items() if k != d0.chosen)


def test_intent_sources_category_classifier_rules_uniform() -> None:
    t = synthetic_table(200)
    m = IntentModel(rules={"math": [r"\bintegral\b"]}).fit(t.texts, t.categories)
    assert m.weights("x", category="chat") == ({"chat": 1.0}, "category")
    w, src = m.weights("solve the integral of this derivative")
    assert src == "classifier" and max(w, key=w.get) == "math"  # type: ignore[arg-type]
    rules_only = IntentModel(["math", "chat"], rules={"math": ["integral"], "chat": ["hello"]})
    assert rules_only.weights("an integral") == ({"math": 1.0}, "rules")
    assert rules_only.weights("nothing matches")[1] == "uniform"
    assert IntentModel(["only"]).weights("anything") == ({"only": 1.0}, "single")
    again = IntentModel.from_dict(m.to_dict())
    assert again.weights("solve the integral") == m.weights("solve the integral")
    with pytest.raises(ConfigError):
        IntentModel(rules={"x": ["("]})


@pytest.mark.slow
def test_learns_the_best_option_per_task_type() -> None:
    t = synthetic_table(1200, seed=1)
    p = PheromonePolicy(seed=0, asynchronous=False).fit_intent(t.texts, t.categories)
    picks: dict[str, Counter[str]] = {"math": Counter(), "chat": Counter()}
    cs = cands(("opt0", "opt1", "opt2"))
    for i in range(len(t)):
        o = obs(t.query_ids[i], cs, text=t.texts[i])
        d = p.decide(o)
        j = int(d.chosen[-1])
        if i >= 600:
            picks[t.categories[i]][d.chosen] += 1  # type: ignore[index]
        p.feedback(fb(o, d, float(t.quality[i, j]), 0.0))
    assert picks["math"].most_common(1)[0][0] == "opt2"
    assert picks["chat"].most_common(1)[0][0] == "opt0"
    assert picks["math"]["opt2"] > 0.7 * sum(picks["math"].values())


def test_asynchronous_feedback_is_applied_by_the_worker() -> None:
    with PheromonePolicy(seed=0, task_types=["x"]) as p:
        o = obs()
        d = p.decide(o)
        p.feedback(fb(o, d, 0.0))
        assert p.flush(5)
        assert p.stats()["applied"] == 1
        assert p.table.level(("x", "model", "", d.chosen)) < p.params.initial


def test_path_credit_reinforces_nodes_and_transitions_once() -> None:
    p = PheromonePolicy(seed=0, task_types=["x"], asynchronous=False, tau0=0.5, rho=0.0)
    o1 = obs("task", point="route")
    d1 = p.decide(o1)
    p.feedback(fb(o1, d1, None, 0.01))  # no quality yet: waits for end_task
    o2 = obs("task", point="model", history=(("route", d1.chosen),))
    d2 = p.decide(o2)
    assert d2.evidence["prev"] == f"route={d1.chosen}"
    p.feedback(fb(o2, d2, None, 0.02))
    assert p.table.edges() == {}
    assert p.end_task("task", quality=1.0) == 2
    edges = p.table.edges()
    assert ("x", "route", "", d1.chosen) in edges
    assert ("x", "model", f"route={d1.chosen}", d2.chosen) in edges
    assert all(e.updates == 1 for e in edges.values())
    assert p.end_task("task", quality=1.0) == 0  # nothing credited twice


def test_step_quality_is_not_credited_again_by_end_task() -> None:
    p = PheromonePolicy(seed=0, task_types=["x"], asynchronous=False)
    o = obs("t")
    d = p.decide(o)
    p.feedback(fb(o, d, 1.0))
    assert p.end_task("t", 0.0) == 0
    assert p.stats()["applied"] == 1


def test_ratio_signal_and_custom_signal() -> None:
    r = PheromonePolicy(signal="ratio", cost_epsilon=1.0, task_types=["x"], asynchronous=False, rho=0.0, tau0=0.5)
    o = obs("t", extra={"cost_scale": 1.0})
    d = r.decide(o)
    r.feedback(fb(o, d, 1.0, 1.0))  # quality 1 at cost = ε: deposit 0.5
    assert r.table.level(("x", "model", "", d.chosen)) == pytest.approx(0.5)
    c = PheromonePolicy(signal=lambda u: 0.125, task_types=["x"], asynchronous=False, rho=0.0, tau0=0.5)
    d = c.decide(o)
    c.feedback(fb(o, d, 1.0))
    assert c.table.level(("x", "model", "", d.chosen)) == pytest.approx((0.5 + 0.125) / 2)


def test_warm_up_from_a_routing_table_and_from_records() -> None:
    t = synthetic_table(400, seed=2)
    p = PheromonePolicy(mode="greedy", asynchronous=False).fit_intent(t.texts, t.categories)
    assert p.warm_up(t) == 6
    cs = cands(("opt0", "opt1", "opt2"))
    assert p.decide(obs("m", cs, category="math")).chosen == "opt2"
    assert p.decide(obs("c", cs, category="chat")).chosen == "opt0"
    lvl = p.table.level(("math", "model", "", "opt2"))
    assert lvl == pytest.approx(t.quality[[c == "math" for c in t.categories], 2].mean())
    assert p.table.edges()[("math", "model", "", "opt2")].visits == pytest.approx(1 / p.params.rho)
    q = PheromonePolicy(task_types=["x"], mode="greedy", tau0=0.5)
    recs = [{"task_id": "a", "point": "route", "chosen": "r1", "quality": 1.0, "cost_usd": 0.0},
            {"task_id": "a", "point": "model", "chosen": "big", "quality": 1.0, "cost_usd": 0.0,
             "evidence": {"weights": {"x": 1.0}}},
            {"task_id": "b", "point": "model", "chosen": "small", "quality": 0.0}]
    assert q.warm_up(recs) == 4
    assert ("x", "model", "route=r1", "big") in q.table.edges()
    with pytest.raises(ConfigError):
        q.warm_up(42)


@pytest.mark.parametrize(
    "kw",
    [{"alpha": -1}, {"beta": float("nan")}, {"exploit": 1.1}, {"mode": "best"}, {"rho": 2}, {"tau_min": 0},
     {"q": -1}, {"eta": {"speed": 1.0}}, {"eta": {"price": -1.0}}, {"signal": "profit"}, {"gate": 2.0},
     {"buffer_size": 0}, {"transition_weight": 1.5}, {"cost_weight": -0.1}, {"cost_scale": 0},
     {"task_types": ["a", "a"]}, {"intent": IntentModel(), "task_types": ["x"]}],
)
def test_every_parameter_is_validated(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PheromonePolicy(**kw)


@settings(max_examples=60, deadline=None)
@given(
    levels=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=8),
    costs=st.lists(st.floats(0.0, 0.01), min_size=8, max_size=8),
    alpha=st.floats(0.0, 10.0),
    beta=st.floats(0.0, 3.0),
    exploit=st.floats(0.0, 1.0),
    lam=st.floats(0.0, 5.0),
    seed=st.integers(0, 10_000),
)
def test_decisions_are_valid_distributions(levels: list[float], costs: list[float], alpha: float, beta: float,
                                           exploit: float, lam: float, seed: int) -> None:
    ids = [f"o{i}" for i in range(len(levels))]
    p = PheromonePolicy(alpha=alpha, beta=beta, exploit=exploit, seed=seed, task_types=["x"], rho=1.0)
    p.table.apply([EdgeUpdate(("x", "model", "", i), 1.0, v) for i, v in zip(ids, levels, strict=False)])
    d = p.decide(obs(f"t{seed}", cands(ids, costs=costs[: len(ids)]), extra={"cost_weight": lam}))
    assert d.chosen in ids
    assert set(d.probabilities) == set(ids)
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in d.probabilities.values())
    assert sum(d.probabilities.values()) == pytest.approx(1.0)
    assert d.probabilities[d.chosen] > 0
    assert max(d.probabilities.values()) >= exploit - 1e-9  # q0 goes to the best trail


def test_seeded_policies_are_reproducible() -> None:
    def run(seed: int) -> list[str]:
        p = PheromonePolicy(seed=seed, task_types=["x"], asynchronous=False)
        out = []
        rng = random.Random(0)
        for i in range(50):
            o = obs(f"t{i}")
            d = p.decide(o)
            out.append(d.chosen)
            p.feedback(fb(o, d, float(rng.random() < 0.5)))
        return out

    assert run(7) == run(7)


def test_runs_in_a_graph_and_the_task_hook_credits_whole_paths() -> None:
    import agentroute as ar

    g = ar.AgentGraph("g")
    tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
    g.add_agent("a", lambda s, ctx: (ctx.complete([{"role": "user", "content": "hi"}], max_tokens=8), {})[1],
                tiers=tiers)
    g.add_agent("b", lambda s, ctx: {})
    g.start("a")
    g.route("a", to=["b", ar.END])
    policy = PheromonePolicy(asynchronous=False, seed=0, task_types=["x"])
    with pytest.warns(DeprecationWarning, match="on_task_end"):  # the alias of one release
        hook = policy.task_hook()
    app = g.compile(policy=policy, provider=ar.providers.Simulated(), hooks=[hook], scorer=lambda s: 0.8)
    for i in range(6):
        res = app.run({"q": "x"}, task_id=f"t{i}")
        assert res.completed
        assert all("tau" in d.evidence and d.evidence["weights"] == {"x": 1.0} for d in res.decisions)
    edges = policy.table.edges()
    assert {k[1] for k in edges} == {"a.model", "route:a"}
    assert any(k[2].startswith("a.model=") for k in edges), "the transition model -> route was reinforced"
    assert policy.stats()["applied"] == 12 and not policy._paths  # every decision credited once, paths released


def test_on_task_end_credits_the_path_once_and_a_failed_task_deposits_nothing() -> None:
    from decimal import Decimal

    from agentroute.routing import TaskOutcome

    def outcome(tid: str, q: float | None, ok: bool = True) -> TaskOutcome:
        return TaskOutcome(tid, q, Decimal("0.001"), 10, ok, False, "completed")

    p = PheromonePolicy(asynchronous=False, seed=0, task_types=["x"], exploit=1.0)
    for tid in ("good", "bad", "unknown"):
        for point in ("a.model", "route:a"):
            p.decide(obs(tid, point=point))
    p.on_task_end(outcome("good", 0.9))
    assert p.stats()["applied"] == 2 and "good" not in p._paths
    p.on_task_end(outcome("good", 0.9))  # a second end of the same task finds nothing left to credit
    assert p.stats()["applied"] == 2
    before = dict(p.table.edges())
    p.on_task_end(outcome("bad", 0.9, ok=False))  # a failed task only evaporates its path
    after = p.table.edges()
    assert all(after[k].tau <= before.get(k, after[k]).tau for k in after)
    p.on_task_end(outcome("unknown", None))  # no quality: the path is released, nothing learnt
    assert not p._paths and not p._inflight


def test_intent_rules_run_on_re2_a_backtracking_pattern_stays_linear_and_a_backreference_is_refused() -> None:
    m = IntentModel(["chat"], rules={"evil": [r"^(a+)+$"]})
    # exponential on a backtracking engine (2^40 paths); RE2 answers in linear time
    assert m.weights("a" * 40 + "b")[0].get("evil", 0.0) < 1.0
    assert m.weights("aaaa")[1] == "rules"
    with pytest.raises(ConfigError, match=r"not a usable regex.*RE2"):
        IntentModel(["x"], rules={"x": [r"(a)\1"]})
