"""On the real LoCoMo conversations (skipped when ../shared/data is absent, failing in CI)."""

from dataclasses import replace

from mem_helpers import PRICES, locomo_folder

from agentroute.memory import TEST_IDS, TRAIN_IDS, Memory, load_conversations
from agentroute.memory._data import split
from agentroute.memory.evaluate import run_policy, summarise
from agentroute.policies.baselines import Fixed


def test_loads_the_eight_and_holds_out_two():
    convs = load_conversations(locomo_folder())
    assert [c.id for c in convs] == sorted([*TRAIN_IDS, *TEST_IDS], key=int)
    train, test = split(convs)
    assert [c.id for c in test] == list(TEST_IDS) and len(train) == 6
    assert all(len(c.turns) > 300 and c.questions for c in convs)
    ids = {t.dia_id for c in convs for t in c.turns}
    gold = [e for c in convs for q in c.questions for e in q.evidence]
    assert sum(e in ids for e in gold) / len(gold) > 0.99


def test_the_longest_conversation_builds_and_low_recall_is_repeatable():
    # Build and recall times are measured by benchmarks/memory_tiers.py, never asserted here.
    conv = max(load_conversations(locomo_folder()), key=lambda c: len(c.turns))
    assert len(conv.turns) >= 600
    mem = Memory(conv, prices=PRICES)
    qs = [q.question for q in conv.questions[:30]]
    first = [mem.recall_with(q, "low") for q in qs]
    again = [mem.recall_with(q, "low") for q in qs]
    assert [r.ids for r in first] == [r.ids for r in again]
    assert all(r.ids and r.context_tokens > 0 for r in first)


def test_high_tiers_recall_more_on_held_out_questions():
    conv = load_conversations(locomo_folder(), ids=[TEST_IDS[0]])[0]
    mem = Memory(replace(conv, questions=conv.questions[:80]), prices=PRICES)
    lo = summarise(run_policy([mem], Fixed("low")))
    hi = summarise(run_policy([mem], Fixed("high")))
    assert hi["overall"]["evidence_recall"] > lo["overall"]["evidence_recall"] + 0.1
    assert hi["per_category"]["temporal"]["answer_recall"] > lo["per_category"]["temporal"]["answer_recall"]
    assert hi["overall"]["cost_usd"] > lo["overall"]["cost_usd"]
