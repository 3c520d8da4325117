"""The LLM router (its calls charged to the task, fallbacks recorded) and the semantic cache (hits, wrong hits)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.strategies import run_strategy
from agentroute.strategies.cache import POINT, Cached, SemanticCache, paraphrase, repeat_stream
from agentroute.strategies.evaluate import Single
from agentroute.strategies.fanout import Descriptor
from agentroute.strategies.llm_router import ROUTE, THINK, LLMPolicy, stand_in
from agentroute.testing import Scripted
from tests.strategies.strat_helpers import OPTIONS, mc_table

ROUTER = ar.ModelTier("router", model="test/router", input_cost_per_token=Decimal("0.000001"),
                      output_cost_per_token=Decimal("0.000001"), max_tokens=32)
DESCS = [Descriptor(o, description=f"expected accuracy {0.5 + 0.1 * j:.2f}", prior=0.5 + 0.1 * j)
         for j, o in enumerate(OPTIONS)]


def _router(script: Any, **kw: Any) -> LLMPolicy:
    return LLMPolicy("router", DESCS, own_tiers=[ROUTER], own_provider=Scripted(script), **kw)


def test_the_router_reads_candidates_routes_reads_the_answer_and_finishes() -> None:
    t = mc_table(4)
    rep = run_strategy(_router(stand_in(cost_weight=0.0)), t)
    for o in rep.outcomes:
        assert o.evidence["route"] == ["strong"] and o.evidence["fallback"] == 0
        assert o.evidence["rounds"] == 2 and o.quality == 1.0
        assert o.calls == 3  # think, route, think (FINISH)
    think = [r for r in rep.records if r.point == THINK]
    assert len(think) == 8 and all(r.cost_usd and r.cost_usd > 0 for r in think)  # its own calls are charged
    o = rep.outcomes[0]
    strong_cost = Decimal(repr(float(t.cost[0, OPTIONS.index("strong")])))
    assert o.cost_usd is not None and o.cost_usd > strong_cost


def test_a_second_round_routes_again_when_the_answer_is_not_well_formed() -> None:
    t = mc_table(2)
    t.responses[:, 0] = "I cannot tell"
    seq = iter(["ROUTE cheap-a", "ROUTE strong"] * 2)
    rep = run_strategy(_router(lambda tier, msgs: next(seq)), t)
    assert [o.evidence["route"] for o in rep.outcomes] == [["cheap-a", "strong"]] * 2
    assert all(o.text == t.responses[0 if i == 0 else 1, 3] for i, o in enumerate(rep.outcomes))


@pytest.mark.parametrize("script, why", [(lambda tier, msgs: "I think maybe the big one", "unparseable"),
                                         (lambda tier, msgs: "ROUTE gpt-99", "unparseable")])
def test_an_unparseable_answer_falls_back_to_the_rule_and_says_so(script: Any, why: str) -> None:
    rep = run_strategy(_router(script), mc_table(2))
    for o in rep.outcomes:
        assert o.evidence["fallback"] >= 1 and why in o.evidence["fallbacks"][0]
        assert o.evidence["route"] == ["strong"]  # the rule: best prior (cost weight 0)
    routed = [r for r in rep.records if r.point == ROUTE]
    assert routed and all(why in r.evidence["fallback"] for r in routed)


def test_a_late_answer_falls_back_too() -> None:
    rep = run_strategy(_router(lambda tier, msgs: "ROUTE cheap-a", timeout=0.0), mc_table(1))
    assert "late" in rep.outcomes[0].evidence["fallbacks"][0]
    assert rep.outcomes[0].evidence["route"] == ["strong"]


@settings(max_examples=20)
@given(budget=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("0.006"), places=5))
def test_under_any_budget_the_router_never_spends_past_it(budget: Decimal) -> None:
    rep = run_strategy(_router(stand_in(cost_weight=0.0)), mc_table(2), budget_usd=budget)
    assert rep.overspent == 0
    assert all(o.cost_usd is not None and o.cost_usd <= budget for o in rep.outcomes)


def test_a_cache_serves_repeats_for_free_and_counts_wrong_hits() -> None:
    t = mc_table(12)
    cache = SemanticCache(threshold=0.9999).fit(t.texts)  # the toy questions differ by one digit
    cached = Cached(Single("strong"), cache, stream={"repeat_share": 0.3, "seed": 1})
    stream = repeat_stream(t, repeat_share=0.3, seed=1)
    kinds = [s.kind for s in stream]
    assert kinds.count("new") == 12 and len(stream) - 12 == round(12 * 0.3 / 0.7)
    rep = run_strategy(cached, t)
    hits = [o for o in rep.outcomes if o.evidence["cache_hit"]]
    assert hits and all(o.cost_usd == 0 and o.calls == 0 for o in hits)
    assert sum(o.evidence["wrong_hit"] for o in hits) == 0
    assert len(hits) <= len(stream) - 12
    cache_points = [r for r in rep.records if r.point == POINT]
    assert len(cache_points) == len(stream)
    # a cache too eager (threshold 0) serves one question's answer to another: wrong hits, scored 0
    eager = Cached(Single("strong"), SemanticCache(threshold=0.0).fit(t.texts), stream={"repeat_share": 0.3})
    rep2 = run_strategy(eager, t)
    wrong = [o for o in rep2.outcomes if o.evidence["wrong_hit"]]
    assert wrong and all(o.quality == 0.0 for o in wrong)


def test_category_thresholds_and_ttl() -> None:
    t = mc_table(8)
    cache = SemanticCache(threshold={"arc-challenge": 0.999, "*": 0.5}, ttl={"arc-challenge": 10.0}).fit(t.texts)
    cache.store(t.texts[0], "arc-challenge", "A", source="q0", now=0.0)
    assert cache.lookup(t.texts[0], "arc-challenge", now=5.0) is not None
    assert cache.lookup(t.texts[0], "arc-challenge", now=11.0) is None  # past its TTL
    assert cache.lookup(t.texts[0], "other", now=5.0) is None  # another category never answers
    thresholds = cache.calibrate(t.texts, t.categories)
    assert 0.0 < thresholds["arc-challenge"] <= 1.0
    assert paraphrase(t.texts[0]) != t.texts[0]


@settings(max_examples=15)
@given(budget=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("0.006"), places=5))
def test_under_any_budget_the_cached_strategy_never_spends_past_it(budget: Decimal) -> None:
    t = mc_table(4)
    cached = Cached(Single("strong"), SemanticCache(threshold=0.9999).fit(t.texts), stream={"repeat_share": 0.3})
    rep = run_strategy(cached, t, budget_usd=budget)
    assert rep.overspent == 0
    for o in rep.outcomes:
        assert o.cost_usd is not None and o.cost_usd <= budget
        assert o.truncated == (o.text is None)  # a miss the budget cannot afford is cut, and says so
