"""Memory inside a real graph run: every module's tier is a recorded, reserved, budgeted routing point."""

from decimal import Decimal

from mem_helpers import memory

import agentroute as ar
from agentroute.memory import MODULE_NAMES
from agentroute.memory.policies import MemoryRulePolicy
from agentroute.policies.baselines import Fixed

Q = "When did Caroline go to the LGBTQ support group?"


def _app(policy):
    g = ar.AgentGraph("mem")

    def answer(state, ctx):
        r = ctx.memory.recall(state["question"])
        return {"context": r.text, "ids": list(r.ids), "cost": str(r.cost_usd)}

    g.add_agent("answer", answer, memory=memory())
    g.start("answer")
    return g.compile(policy)


def test_tiers_are_routing_points_of_the_task():
    res = _app(MemoryRulePolicy()).run({"question": Q}, budget=ar.Budget(usd="0.01"))
    assert not res.truncated and "D1:1" in res.state["ids"]
    mem_decisions = [d for d in res.decisions if d.kind == "memory"]
    assert [d.point for d in mem_decisions] == [f"answer.memory.{m}" for m in MODULE_NAMES]
    assert [d.chosen for d in mem_decisions] == ["high", "mid", "low", "high"]  # the rule for "when" questions
    for d in mem_decisions:
        assert Decimal(d.reservation["usd"]) >= d.cost_usd >= 0
    assert res.spent.usd >= Decimal(res.state["cost"]) - Decimal("1e-12")  # the ledger never charges less


def test_a_tight_budget_masks_the_dear_tiers_and_is_never_exceeded():
    res = _app(Fixed("high")).run({"question": Q}, budget=ar.Budget(usd="0.0004"))
    assert res.spent.usd <= Decimal("0.0004")
    chosen = {d.point.rsplit(".", 1)[-1]: d.chosen for d in res.decisions if d.kind == "memory"}
    assert chosen["retrieve"] != "high"
    assert any(m.id == "high" for d in res.decisions if d.kind == "memory" for m in d.masked)
