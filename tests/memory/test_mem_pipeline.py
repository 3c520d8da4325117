from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mem_helpers import PRICES, FakeCtx, conversation, locomo_dict, memory

from agentroute.errors import ConfigError, DataError
from agentroute.memory import MODULE_NAMES, TIERS, Conversation, Memory, approx_tokens
from agentroute.memory.evaluate import COMBOS, combo_table, score

MEM = memory()
QUESTIONS = conversation().questions


def test_build_from_many_sources(tmp_path):
    m = Memory.from_conversation(["I love pottery.", "We went to Paris in May."], prices=PRICES)
    assert m.recall("When was the Paris trip?", "low").ids == ("D1:2",)
    m2 = Memory.from_conversation([{"speaker": "Ann", "text": "My cat is called Tom.", "date": "2024-03-01"}],
                                  prices=PRICES)
    assert "Tom" in m2.recall("cat name").text
    p = tmp_path / "c.json"
    import json

    p.write_text(json.dumps(locomo_dict()))
    assert Memory.from_conversation(p, prices=PRICES).store.n == 22
    assert Memory.from_conversation(locomo_dict(), prices=PRICES).conversation.speakers == ("Caroline", "Melanie")
    with pytest.raises(ConfigError):
        Memory.from_conversation([], prices=PRICES)
    with pytest.raises(DataError):
        Memory.from_conversation(p.with_name("missing.json"))
    with pytest.raises(ConfigError, match="unknown memory module"):
        MEM.plan("summarise", "q")
    with pytest.raises(ConfigError, match="unknown memory tier"):
        MEM.run_module("retrieve", "max", "q")
    with pytest.raises(ConfigError):
        MEM.recall("   ")


def test_locomo_parsing_keeps_gold_and_captions():
    c = conversation()
    assert len(c.turns) == 22 and c.turns[0].date is not None
    assert "[shares an image: a photo of two clay bowls]" in c.turns[9].text
    adv = next(q for q in c.questions if q.category == 5)
    assert adv.adversarial and adv.answer == "violin" and adv.category_name == "adversarial"
    qa = [{"question": "x", "category": 1, "evidence": ["D1:3; D1:4", "D"]}]
    bad = Conversation.from_locomo({**locomo_dict(), "qa": qa})
    assert bad.questions[0].evidence == ("D1:3", "D1:4")


def test_low_finds_keywords_and_high_resolves_time():
    r = MEM.recall_with("Which adoption agency supports LGBTQ+ individuals?", "low")
    assert "D1:9" in r.ids and r.call_input_tokens == 0
    q = QUESTIONS[0]  # "When did Caroline go to the LGBTQ support group?" -> 7 May 2023 ("yesterday" on 8 May)
    low = MEM.recall_with(q.question, {"retrieve": "mid", "filter": "low", "link": "low", "time": "low"})
    high = MEM.recall_with(q.question, {"retrieve": "mid", "filter": "low", "link": "low", "time": "high"})
    assert score(q, low) == (1.0, 0.0)
    assert score(q, high) == (1.0, 1.0)
    assert "yesterday = 7 May 2023" in high.text and high.context_tokens > low.context_tokens


def test_costs_add_up():
    r = MEM.recall_with(QUESTIONS[1].question, "high")
    assert r.call_input_tokens > 0 and r.call_output_tokens > 0
    ctx_in, _ = PRICES["context"]
    call_in, call_out = PRICES["call"]
    assert r.cost_usd == ctx_in * r.context_tokens + call_in * r.call_input_tokens + call_out * r.call_output_tokens
    assert sum(s.context_tokens for s in r.steps) == r.context_tokens
    assert r.context_tokens == sum(approx_tokens(line) + 1 for line in r.text.split("\n"))
    assert [s.module for s in r.steps] == list(MODULE_NAMES)
    assert r.tokens == r.context_tokens + r.call_input_tokens + r.call_output_tokens


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(QUESTIONS) - 1), st.tuples(*[st.sampled_from(TIERS)] * len(MODULE_NAMES)))
def test_worst_case_covers_every_step(qi, tiers):
    """What plan() offers to reserve is never less than what the module then spends."""
    q = QUESTIONS[qi].question
    state = MEM.start(q)
    for module, tier in zip(MODULE_NAMES, tiers, strict=True):
        opt = {o.id: o for o in MEM.plan(module, q, state)}[tier]
        before = state
        state = MEM.run_module(module, tier, q, state)
        step = state.steps[-1]
        assert before.steps == state.steps[:-1]  # the old state is untouched
        assert step.context_tokens <= opt.context_tokens
        assert step.call_input_tokens <= opt.call_input_tokens
        assert step.call_output_tokens <= opt.call_output_tokens
        assert MEM.step_cost(state) <= opt.cost_usd
    ranks = [o.rank for o in MEM.plan("filter", q, state)]
    assert ranks == [0, 1, 2]


def test_runs_are_deterministic_and_pure():
    q = QUESTIONS[2].question
    s0 = MEM.start(q)
    a = MEM.run_module("retrieve", "high", q, s0)
    b = MEM.run_module("retrieve", "high", q, s0)
    assert a.selected == b.selected and s0.selected == ()
    assert memory().recall_with(q, "high").text == MEM.recall_with(q, "high").text


def test_model_call_goes_through_llm():
    calls = []

    def llm(messages, max_tokens):
        calls.append((messages, max_tokens))
        return "D2:12, D1:1", 500, 7, Decimal("0.001")

    q = "What instrument does Oliver play?"
    r = MEM.recall_with(q, {"retrieve": "high", "filter": "high", "link": "low", "time": "low"}, llm=llm)
    assert len(calls) == 1 and "Question: What instrument" in calls[0][0][1]["content"]
    assert r.call_input_tokens == 500 and r.call_output_tokens == 7
    assert "D2:12" in r.ids
    assert r.cost_usd == PRICES["context"][0] * r.context_tokens + Decimal("0.001")


def test_bound_memory_asks_the_runtime_at_every_module():
    ctx = FakeCtx({"retrieve": "mid", "filter": "high", "link": "mid", "time": "high"})
    bound = MEM.bind(ctx)
    r = bound.recall("What book is Caroline reading?")
    assert [p[1] for p in ctx.points] == [f"answerer.memory.{m}" for m in MODULE_NAMES]
    for kind, _, cands, extra in ctx.points:
        assert kind == "memory" and [c.id for c in cands] == list(TIERS) and [c.rank for c in cands] == [0, 1, 2]
        assert all(c.kind == "memory" and "tokens" in c.descriptor for c in cands)
        assert extra["query"] == "What book is Caroline reading?"
    assert [t for t, _ in ctx.settled] == ["mid", "high", "mid", "high"]
    assert all(s.cost_usd >= 0 and s.tokens >= 0 for _, s in ctx.settled)
    assert ctx.router.ledger.spent.usd == sum(s.cost_usd for _, s in ctx.settled) > 0
    assert dict(r.tiers) == ctx.tiers and "D2:4" in r.ids
    assert bound.store is MEM.store  # everything else passes through


def test_combo_table_all_high_beats_all_low_on_evidence():
    t = combo_table([MEM])
    assert t.evidence.shape == (len(QUESTIONS), len(COMBOS))
    hi, lo = t.mean(("high",) * 4), t.mean(("low",) * 4)
    assert hi["evidence_recall"] >= lo["evidence_recall"]
    assert hi["cost_usd"] > lo["cost_usd"]
    assert ((t.evidence >= 0) & (t.evidence <= 1)).all()
