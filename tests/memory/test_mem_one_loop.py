"""Memory's routing points are one loop: serving, the offline evaluation and the environment agree (issue 12).

Each test reproduces a drift the copies of the loop had: masking on USD only offline, a shrunk context giving budget
back in training, an unknown cost turned into 0, point names that differ, and a high filter whose model step never
reached the task's model path.
"""

from decimal import Decimal

import pytest
from mem_helpers import conversation, memory

import agentroute as ar
from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.envs.memory_tier import MemoryTierEnv
from agentroute.errors import ConfigError
from agentroute.memory import MODULE_NAMES, Memory
from agentroute.memory.routing import memory_observation, route
from agentroute.policies.baselines import Fixed

MEM = memory()
Q = "What book is Caroline reading?"


def _serve(tiers, *, agent_tiers=None, budget=None, policy=None):
    g = ar.AgentGraph("one-loop")

    def answer(state, ctx):
        r = ctx.memory.recall_with(state["question"], tiers) if tiers else ctx.memory.recall(state["question"])
        return {"tiers": dict(r.tiers), "steps": [s.context_tokens for s in r.steps]}

    g.add_agent("answer", answer, memory=MEM, tiers=agent_tiers)
    g.start("answer")
    return g.compile(policy or ar.policies.Cheapest(), provider=ar.providers.Simulated(seed=0)).run(
        {"question": Q}, budget=budget or Budget())


def test_offline_masking_is_the_kernels_on_every_dimension():
    state = MEM.start(Q)
    high = next(o for o in MEM.plan("retrieve", Q, state) if o.id == "high")
    status = BudgetStatus(limits=Budget(tokens=high.tokens - 1), spent=Spend(),
                          remaining=Budget(tokens=high.tokens - 1))
    obs = memory_observation(MEM, "retrieve", state, budget=status)
    assert "high" not in obs.ids
    assert [m.reason for m in obs.masked if m.id == "high"] == [
        f"budget:tokens: needs {high.tokens} tokens, {high.tokens - 1} left"]


def test_a_shrunk_context_books_the_same_in_training_and_serving():
    tiers = dict.fromkeys(MODULE_NAMES, "mid")
    served = _serve(tiers)
    assert min(served.state["steps"]) < 0, "the mid filter must shorten this context for the test to mean something"
    env = MemoryTierEnv([MEM], reward="tradeoff", cost_weight=0.0)
    item = next(j for j, (_, _, q) in enumerate(env.items) if q.question == Q)
    env.reset(seed=0, options={"item": item})
    for _ in MODULE_NAMES:
        *_, info = env.step(1)
    assert info["tiers"] == tiers
    assert Decimal(str(info["cost_usd"])) == pytest.approx(served.spent.usd, abs=Decimal("1e-15"))
    _, routed = route(MEM, Q, Fixed("mid"))
    assert routed.spent.usd == served.spent.usd  # the offline evaluation books it the same way


def test_the_env_refuses_memories_whose_costs_are_unknown():
    unpriced = Memory(conversation(), prices={"context": None, "call": None})
    with pytest.raises(ConfigError, match="no known price"):
        MemoryTierEnv([unpriced])
    _, routed = route(unpriced, Q, Fixed("low"))  # offline and unpriced: the cost stays unknown, never 0
    assert routed.spent.usd is None and all(r.cost_usd is None for r in routed.records)


def test_point_names_are_the_same_in_serving_training_and_evaluation():
    served = [d.point for d in _serve(None).decisions if d.kind == "memory"]
    _, routed = route(MEM, Q, ar.policies.Cheapest())
    env = MemoryTierEnv([MEM])
    env.reset(seed=0)
    seen = []
    for _ in MODULE_NAMES:
        seen.append(env._obs.point)  # type: ignore[union-attr]
        env.step(0)
    want = [f"answer.memory.{m}" for m in MODULE_NAMES]
    assert served == [r.point for r in routed.records] == seen == want


def test_the_high_filter_calls_the_task_model_path():
    tiers = (ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o"))
    res = _serve(dict.fromkeys(MODULE_NAMES, "high"), agent_tiers=tiers, budget=Budget(usd="0.05"))
    step = [d for d in res.decisions if d.point == "answer.memory.filter.model"]
    assert len(step) == 1 and step[0].kind == "model" and step[0].chosen == "small"  # the cheapest policy's pick
    assert len(res.calls) == 1 and res.calls[0].agent == "answer" and res.calls[0].cost_usd == step[0].cost_usd > 0
    filt = next(d for d in res.decisions if d.point == "answer.memory.filter")
    # the memory point needed the call but held only its context part: the call was reserved by the model path
    assert Decimal(filt.reservation["usd"]) < filt.candidates[-1].cost_estimate
    assert res.spent.usd == sum(d.cost_usd for d in res.decisions if d.kind in ("memory", "model"))
