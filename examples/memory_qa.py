"""Memory in budget tiers inside a graph: a trained policy picks each memory module's tier, under a hard budget.

An answering agent recalls from a long LoCoMo conversation (``ctx.memory.recall``) and asks a model. Every memory
module (retrieve, filter, link, time) is a routing point: the shipped fitted-Q policy (``policies/memory-fitted-q``,
trained on the six training conversations by ``agentroute memory fit``) chooses low, mid or high per question; tiers
whose worst case the budget cannot cover are masked; the model tier goes to the cheapest. All offline: simulated
models through LiteLLM, no key.

Run: python examples/memory_qa.py   (reads $AGENTROUTE_DATA_DIR/locomo, default ../shared/data/locomo; without it, a
short built-in conversation)
"""

from decimal import Decimal

import agentroute as ar
from agentroute.errors import DataError
from agentroute.memory import Memory, load_conversation, locomo_dir
from agentroute.memory.evaluate import gradable
from agentroute.memory.policies import load_policy

try:
    conversation = load_conversation(locomo_dir() / "47.json")  # held out: the policy never saw it
    questions = [q for _, q in gradable(conversation.questions)][:40]
except DataError:
    print("LoCoMo data not found: using a short built-in conversation")
    conversation = Memory.from_conversation(
        [
            {"speaker": "Ana", "text": "I started pottery classes last Tuesday, my first bowl cracked."},
            {"speaker": "Ben", "text": "Pottery! Where do you take them?"},
            {"speaker": "Ana", "text": "At the community studio on Elm Street, with my sister Clara."},
            {"speaker": "Ben", "text": "I adopted a dog, a beagle called Max."},
        ]
    ).conversation
    questions = []
memory = Memory(conversation)
tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
graph = ar.AgentGraph("memory-qa")


@graph.agent(tiers=tiers, memory=memory)
def answer(state, ctx):
    recall = ctx.memory.recall(state["question"])  # four routing points, one per module
    prompt = f"Conversation excerpts:\n{recall.text}\n\nQuestion: {state['question']}"
    reply = ctx.complete([{"role": "user", "content": prompt}], max_tokens=60)
    return {"answer": reply.text, "ids": list(recall.ids), "memory_usd": str(recall.cost_usd)}


graph.start("answer")
app = graph.compile(policy=load_policy("policies/memory-fitted-q.json"), provider=ar.providers.Simulated(seed=0))

question = questions[0].question if questions else "Where does Ana take pottery classes?"
result = app.run({"question": question}, budget=ar.Budget(usd="0.004"))
print(f"Q: {question}\nspent ${result.spent.usd} of $0.004, {result.reason}")
for d in result.decisions:  # memory tiers first, then the model tier
    masked = f" (masked: {', '.join(m.id for m in d.masked)})" if d.masked else ""
    reserved, paid = Decimal(d.reservation.get("usd") or 0), d.cost_usd or 0
    print(f"  {d.point:24s} {d.chosen:5s} reserved ${reserved:.6f}, paid ${paid:.6f}{masked}\n    {d.reason}")

if questions:
    # A batch of held-out questions: how much of the gold evidence reached the model, and at what memory cost.
    team = ar.SharedBudget(ar.Budget(usd="0.2"))
    results = app.batch([{"question": q.question} for q in questions], budget=team, concurrency=4)
    hits = [
        sum(e in set(r.state.get("ids", ())) for e in q.evidence) / len(q.evidence)
        for q, r in zip(questions, results, strict=True)
    ]
    mem_usd = sum(Decimal(r.state.get("memory_usd", "0")) for r in results)
    mix: dict[str, dict[str, int]] = {}
    for r in results:
        for d in r.decisions:
            if d.kind == "memory":
                mod = mix.setdefault(d.point.rsplit(".", 1)[-1], {"low": 0, "mid": 0, "high": 0})
                mod[d.chosen] += 1
    high = [memory.recall(q.question, "high") for q in questions]
    high_hits = [
        sum(e in set(h.ids) for e in q.evidence) / len(q.evidence) for q, h in zip(questions, high, strict=True)
    ]
    high_usd = sum(h.cost_usd for h in high)
    print(f"{len(questions)} held-out questions, team spent ${team.spent.usd} of $0.2")
    print(f"  routed memory: evidence recall {sum(hits) / len(hits):.3f}, memory cost ${mem_usd:.5f}")
    print(f"  all-high     : evidence recall {sum(high_hits) / len(high_hits):.3f}, memory cost ${high_usd:.5f}")
    print("  tiers chosen per module:", mix)

# A second look: recall, answer, and recall again at the high tiers when the answer is not good enough. A real
# model would be asked to reply UNSURE when its excerpts do not say; the simulated one reports a quality instead,
# which stands in for that judgement here (low for long prompts, hence the low bar). Every look is budgeted, its
# worst case reserved first; a look the budget cannot afford is skipped and the first answer kept.
cascade_graph = ar.AgentGraph("memory-qa-cascade")


@cascade_graph.agent(tiers=tiers, memory=memory)
def answer_twice(state, ctx):
    def ask(recall):
        prompt = f"Conversation excerpts:\n{recall.text}\n\nQuestion: {state['question']}\nReply UNSURE if unsure."
        return ctx.complete([{"role": "user", "content": prompt}], max_tokens=60)

    recall, reply = ctx.memory.cascade(
        state["question"], ask, enough=lambda r: "UNSURE" not in r.text and (r.quality is None or r.quality >= 0.1)
    )
    return {"answer": reply.text, "looks": recall.look, "ids": list(recall.ids)}


cascade_graph.start("answer_twice")
cascade_app = cascade_graph.compile(policy=load_policy("policies/memory-fitted-q.json"),
                                    provider=ar.providers.Simulated(seed=0))
asked = [q.question for q in questions[:20]] or [question]
runs = cascade_app.batch([{"question": q} for q in asked], budget=ar.Budget(usd="0.01"), concurrency=4)
looked_twice = sum(r.state.get("looks") == 2 for r in runs)
print(f"cascade: {looked_twice} of {len(runs)} questions looked twice; "
      f"max spent per question ${max(r.spent.usd for r in runs)} of $0.01")
