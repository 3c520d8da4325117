"""Fan-out and refine: a set picked by descriptors, every member reserved first, Plackett–Luce propensities."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.errors import ConfigError
from agentroute.strategies import run_strategy
from agentroute.strategies.fanout import PICK, Descriptor, FanOut, plackett_luce, set_propensity
from tests.strategies.strat_helpers import OPTIONS, mc_table


def _fanout(**kw: object) -> FanOut:
    t = mc_table(8)
    agents = [Descriptor(o, description=f"{o} answers multiple choice questions", prior=0.5 + 0.1 * j)
              for j, o in enumerate(OPTIONS)]
    return FanOut(agents, **kw).fit(t.texts)  # type: ignore[arg-type]


@given(st.lists(st.floats(-3, 3), min_size=2, max_size=5), st.floats(0.05, 5.0))
def test_plackett_luce_propensities_of_all_orders_sum_to_one(scores: list[float], tau: float) -> None:
    names = {f"a{i}": s for i, s in enumerate(scores)}
    for k in range(1, len(names) + 1):
        total = sum(set_propensity(p, names, tau) for p in itertools.permutations(names, k))
        assert total == pytest.approx(1.0)
    assert plackett_luce(scores, 0.0).tolist().count(1.0) == 1


def test_the_set_is_reserved_before_anyone_runs_and_records_carry_the_pick_distributions() -> None:
    t = mc_table(6)
    fan = _fanout(k=3)
    rep = run_strategy(fan, t)
    for o in rep.outcomes:
        assert o.evidence["set_size"] == 3 and o.calls == 3 and o.evidence["propensity"] == 1.0
        assert o.evidence["set"] == ["strong", "cheap-c", "cheap-b"]  # priors order them, similarity is alike
    picks = [r for r in rep.records if r.point.startswith(PICK)]
    assert [r.point for r in picks[:3]] == [f"{PICK}0", f"{PICK}1", f"{PICK}2"]
    assert picks[1].chosen not in [c.id for c in picks[1].candidates if c.id == picks[0].chosen]
    assert all(r.reservation is not None for r in picks)  # each member's worst case was held


def test_a_sampled_set_has_its_plackett_luce_propensity_in_the_records() -> None:
    t = mc_table(4)
    fan = _fanout(k=2, temperature=0.5, seed=3)
    rep = run_strategy(fan, t)
    by_task: dict[str, list] = {}
    for r in rep.records:
        if r.point.startswith(PICK):
            by_task.setdefault(r.task_id, []).append(r)
    for i, (o, (task, recs)) in enumerate(zip(rep.outcomes, by_task.items(), strict=True)):
        assert task == t.query_ids[i]
        prod = math.prod(r.probabilities[r.chosen] for r in recs)
        scores = fan.scores(t.texts[i], {c.id: c.cost_estimate for c in recs[0].candidates})
        assert o.evidence["propensity"] == pytest.approx(prod)
        assert prod == pytest.approx(set_propensity(o.evidence["set"], scores, 0.5))
        assert all(r.explored for r in recs)


def test_an_agent_added_with_a_description_is_routable_without_refitting() -> None:
    t = mc_table(4)
    fan = _fanout(k=1, similarity_weight=5.0)
    featurizer = fan.featurizer
    before = fan.scores(t.texts[0])
    fan.add(Descriptor("newbie", description=t.texts[0], prior=0.5))
    assert fan.featurizer is featurizer
    after = fan.scores(t.texts[0])
    assert after["newbie"] > max(before.values())  # its description is the question itself
    with pytest.raises(ConfigError, match="already there"):
        fan.add(Descriptor("newbie"))


@settings(max_examples=20)
@given(budget=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.01"), places=4))
def test_under_any_budget_the_fanout_never_spends_past_it(budget: Decimal) -> None:
    rep = run_strategy(_fanout(k=3), mc_table(3), budget_usd=budget)
    assert rep.overspent == 0
    for o in rep.outcomes:
        assert o.cost_usd is not None and o.cost_usd <= budget
        assert o.truncated == (o.evidence["set_size"] < 3)


def test_exported_pick_records_feed_the_off_policy_estimators() -> None:
    import json

    from agentroute._offpolicy import ips_from_records
    from agentroute.routing import DecisionRecord

    t = mc_table(8)
    rep = run_strategy(_fanout(k=1, temperature=0.3, seed=1), t)
    rows = [json.loads(json.dumps(r.to_dict(), default=str)) for r in rep.records]  # as decisions.jsonl holds them
    back = [DecisionRecord.from_dict(x) for x in rows]
    picks = [r for r in back if r.point == f"{PICK}0"]
    assert len(picks) == 8 and all(0.0 < r.propensity <= 1.0 and r.quality is not None for r in picks)

    def greedy(rec: DecisionRecord) -> dict[str, float]:
        return {max(rec.scores, key=lambda c: rec.scores[c]): 1.0}

    est = ips_from_records(picks, greedy)
    direct = ips_from_records([r for r in rep.records if r.point == f"{PICK}0"], greedy)
    assert est["ips"] == pytest.approx(direct["ips"]) and 0.0 <= est["snips"] <= 1.0
