"""The README example: a two-agent support graph with a rule policy, offline (simulated models through LiteLLM).

Run: python examples/support.py
"""

import asyncio

import agentroute as ar

tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
graph = ar.AgentGraph("support")


@graph.agent(tiers=tiers)
def triage(state, ctx):
    reply = ctx.complete([{"role": "user", "content": state["question"]}])
    return {"draft": reply.text}


@graph.agent(tiers=tiers)
def expert(state, ctx):
    reply = ctx.complete([{"role": "user", "content": state["draft"]}], max_tokens=400)
    return {"answer": reply.text}


graph.start("triage")
graph.route("triage", to=["expert", ar.END])  # a routing point: the policy picks the next agent
app = graph.compile(
    policy=ar.policies.RulePolicy.from_file("policies/support.yaml"),
    provider=ar.providers.Simulated(seed=0),  # offline; omit provider to call the real APIs
)
result = app.run({"question": "My invoice is wrong"}, budget=ar.Budget(usd="0.01", tokens=4000, steps=6))
print(result.state["answer"][:60], result.spent, result.truncated, result.reason)
for d in result.decisions:  # one per routing point: agent choice and model tier choice
    print(d.kind, d.chosen, d.probabilities, d.reason, d.budget_before, d.budget_after)

# The async twin, and a batch of tasks sharing one team budget:
team = ar.SharedBudget(ar.Budget(usd="0.02"))
results = app.batch([{"question": f"Where is my refund for order {i}"} for i in range(20)], budget=team, concurrency=8)
print(f"{sum(r.completed for r in results)} of 20 completed; the team spent ${team.spent.usd} of $0.02")
print(asyncio.run(app.arun({"question": "How do I change my email"})).reason)
