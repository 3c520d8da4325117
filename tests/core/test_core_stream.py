"""app.stream / app.astream: a task's step, call and decision events as they happen, then its result."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import agentroute as ar
from agentroute.errors import ConfigError

TIERS = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]


def _graph(*, aio: bool, fail: bool = False) -> ar.AgentGraph:
    graph = ar.AgentGraph("streamed")
    if aio:
        @graph.agent(tiers=TIERS)
        async def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            return {"draft": (await ctx.acomplete([{"role": "user", "content": state["input"]}], max_tokens=64)).text}

        @graph.agent(tiers=TIERS)
        async def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"answer": (await ctx.acomplete([{"role": "user", "content": state["draft"]}], max_tokens=64)).text}
    else:
        @graph.agent(tiers=TIERS)
        def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            return {"draft": ctx.complete([{"role": "user", "content": state["input"]}], max_tokens=64).text}

        @graph.agent(tiers=TIERS)
        def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            if fail:
                raise RuntimeError("the expert is out")
            return {"answer": ctx.complete([{"role": "user", "content": state["draft"]}], max_tokens=64).text}

    graph.start("triage")
    graph.route("triage", to=["expert", ar.END])
    return graph


def _app(**kw: Any) -> ar.App:
    return _graph(**kw).compile(ar.policies.Strongest(), ar.providers.Simulated(seed=1))


def _check(events: list[Any], result: ar.RunResult) -> None:
    kinds = [e.kind for e in events]
    assert kinds[0] == "task_start" and kinds[-1] == "end" and kinds.count("end") == 1
    assert events[-1].record is result or events[-1].record.task_id == result.task_id
    assert {e.task_id for e in events} == {result.task_id}
    steps = [(e.kind, e.record.step) for e in events if e.kind in ("step_start", "step_end")]
    assert steps == [(k, i) for i in range(result.steps) for k in ("step_start", "step_end")]  # in order, paired
    assert sorted(e.record.index for e in events if e.kind == "decision") == [d.index for d in result.decisions]
    assert len([e for e in events if e.kind == "call"]) == len(result.calls)
    for e in events:  # every event has a JSON form (what the server sends)
        assert json.loads(json.dumps(e.as_dict()))["event"] == e.kind


def test_stream_yields_every_step_and_decision_then_the_same_result_as_run() -> None:
    events = list(_app(aio=False).stream({"input": "refund please"}, budget=ar.Budget(usd="0.05")))
    result = events[-1].record
    _check(events, result)
    plain = _app(aio=False).run({"input": "refund please"}, budget=ar.Budget(usd="0.05"))
    assert result.spent.usd == plain.spent.usd and result.state == plain.state  # the stream changes nothing
    settled = sorted((e.record for e in events if e.kind == "decision"), key=lambda d: d.index)
    assert [d.point for d in settled] == [d.point for d in plain.decisions]


async def test_astream_on_an_async_graph() -> None:
    app = _app(aio=True)
    events = [e async for e in app.astream({"input": "refund please"}, budget=ar.Budget(usd="0.05"))]
    _check(events, events[-1].record)
    assert events[-1].record.reason == "completed"


def test_a_failing_task_ends_its_stream_with_the_error() -> None:
    events = list(_app(aio=False, fail=True).stream({"input": "x"}))
    end = events[-1]
    assert end.kind == "end" and isinstance(end.record.error, ar.AgentError)
    assert end.as_dict()["error"] == "AgentError"
    assert [e.record.error for e in events if e.kind == "step_end"] == [None, "RuntimeError"]


def test_misuse_is_raised_where_the_stream_is_read() -> None:
    with pytest.raises(ConfigError, match="inputs must be a dict"):
        list(_app(aio=False).stream(["not", "a", "dict"]))  # type: ignore[arg-type]


async def test_a_stream_left_early_releases_what_the_task_held() -> None:
    team = ar.SharedBudget(ar.Budget(usd="1.00", steps=5))
    graph = ar.AgentGraph("waits")
    gate = asyncio.Event()  # never set: the step is cancelled while it holds its reservation, before any call

    @graph.agent(tiers=TIERS)
    async def slow(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        await gate.wait()
        return {}

    graph.start("slow")
    app = graph.compile(ar.policies.Strongest(), ar.providers.Simulated(seed=1))
    stream = app.astream({"input": "refund please"}, budget=team)
    async for e in stream:
        if e.kind == "step_start":
            assert team.ledger.reserved.steps == 1  # the step is held while it runs
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert team.ledger.reserved.usd == 0 and team.ledger.reserved.steps == 0
