"""ar.wrap: a graph built with LangGraph's own API gets routing points at its conditional edges and model calls."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

import agentroute as ar
from agentroute.errors import ConfigError

TIERS = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]


class State(TypedDict, total=False):
    question: str
    draft: str
    answer: str
    log: Annotated[list[str], operator.add]


def _triage(state: State) -> dict[str, Any]:
    reply = ar.complete([{"role": "user", "content": state["question"]}], max_tokens=64)
    return {"draft": reply.text, "log": ["triage"]}


async def _expert(state: State, config: RunnableConfig) -> dict[str, Any]:
    reply = await ar.acomplete([{"role": "user", "content": state["draft"]}], max_tokens=128)
    return {"answer": reply.text, "log": ["expert"]}


def support() -> StateGraph:
    sg = StateGraph(State)
    sg.add_node("triage", _triage)
    sg.add_node("expert", _expert)
    sg.add_edge(START, "triage")
    sg.add_conditional_edges("triage", lambda s: "expert" if "refund" in s["question"] else "done",
                             {"expert": "expert", "done": END})
    sg.add_edge("expert", END)
    return sg


def _app(**kw: Any) -> ar.App:
    return ar.wrap(support(), ar.policies.Strongest(), ar.providers.Simulated(seed=2), tiers=TIERS, **kw)


def test_a_langgraph_graph_runs_with_routing_points_and_its_reducers() -> None:
    result = _app().run({"question": "where is my order?", "log": []}, budget=ar.Budget(usd="0.05"))
    assert result.reason == "completed" and result.steps == 2
    assert result.state["log"] == ["triage", "expert"]  # operator.add merged, as LangGraph would
    assert result.state["answer"].startswith("[openai/gpt-4o]")  # the strongest tier, chosen by the policy
    points = [(d.point, d.chosen) for d in result.decisions]
    assert points == [("triage.model", "large"), ("route:triage", "expert"), ("expert.model", "large")]
    route = next(d for d in result.decisions if d.point == "route:triage")
    assert [c.id for c in route.candidates] == ["expert", ar.END]  # the path_map's targets are the options
    assert result.spent.usd == sum(c.cost_usd for c in result.calls)


def test_the_budget_masks_a_conditional_edge_target_and_a_tier() -> None:
    # enough for one small call only: the large tier is masked, then the expert, and the task ends at the edge
    app = _app()
    result = app.run({"question": "refund please", "log": []}, budget=ar.Budget(usd="0.00003"))
    first = result.decisions[0]
    assert first.point == "triage.model" and first.chosen == "small"
    assert any(m.id == "large" and m.reason.startswith("budget:usd") for m in first.masked)
    route = next(d for d in result.decisions if d.point == "route:triage")
    assert route.chosen == ar.END and any(m.id == "expert" for m in route.masked)
    assert result.state["log"] == ["triage"] and result.spent.usd <= ar.Budget(usd="0.00003").usd


async def test_a_wrapped_graph_streams_its_events() -> None:
    events = [e async for e in _app().astream({"question": "refund please", "log": []})]
    kinds = [e.kind for e in events]
    assert kinds[0] == "task_start" and kinds[-1] == "end"
    assert [e.record.agent for e in events if e.kind == "step_start"] == ["triage", "expert"]
    assert any(e.kind == "decision" and e.record.point == "route:triage" for e in events)


def test_what_wrap_cannot_route_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="StateGraph"):
        ar.wrap(object(), ar.policies.Strongest())
    with pytest.raises(ConfigError, match="'nowhere'"):
        ar.wrap(support(), ar.policies.Strongest(), tiers={"nowhere": TIERS})
    fan = StateGraph(State)
    fan.add_node("a", lambda s: {})
    fan.add_node("b", lambda s: {})
    fan.add_edge(START, "a")
    fan.add_edge("a", "b")
    fan.add_edge("a", END)
    with pytest.raises(ConfigError, match="'a' has several outgoing edges"):
        ar.wrap(fan, ar.policies.Strongest())
    no_map = StateGraph(State)
    no_map.add_node("a", lambda s: {})
    no_map.add_edge(START, "a")
    no_map.add_conditional_edges("a", lambda s: END)
    with pytest.raises(ConfigError, match="no path_map"):
        ar.wrap(no_map, ar.policies.Strongest())
    with pytest.raises(ConfigError, match="no agentroute step"):
        ar.complete([{"role": "user", "content": "hi"}])


def _plain() -> StateGraph:
    """No model calls: LangGraph itself can run it, so the wrapped run can be compared with LangGraph's."""
    sg = StateGraph(State)
    sg.add_node("triage", lambda s: {"draft": s["question"].upper(), "log": ["triage"]})
    sg.add_node("expert", lambda s: {"answer": s["draft"][::-1], "log": ["expert"]})
    sg.add_node("faq", lambda s: {"answer": "see the FAQ", "log": ["faq"]})
    sg.add_edge(START, "triage")
    sg.add_conditional_edges("triage", lambda s: "refund" if "refund" in s["question"] else
                             "faq" if "?" in s["question"] else "done",
                             {"refund": "expert", "faq": "faq", "done": END})
    sg.add_edge("expert", END)
    sg.add_edge("faq", END)
    return sg


@pytest.mark.parametrize("question", ["refund my order", "how do I log in?", "thanks"])
def test_the_declared_default_follows_the_path_function_as_langgraph_does(question: str) -> None:
    inputs = {"question": question, "log": []}
    theirs = _plain().compile().invoke(inputs)
    ours = ar.wrap(_plain(), ar.policies.DeclaredDefault()).run(inputs)
    assert ours.state == theirs  # same path, same reducers, same final state
    route = next(d for d in ours.decisions if d.point == "route:triage")
    defaults = [c.id for c in route.candidates if c.descriptor.get("default")]
    assert defaults == [route.chosen]  # the path function's answer was the point's default, and it was taken
    cheapest = ar.wrap(_plain(), ar.policies.Cheapest()).run(inputs)  # another policy may still choose otherwise
    assert next(d for d in cheapest.decisions if d.point == "route:triage").chosen == ar.END
