"""Resumable tasks: a task killed with SIGKILL mid-way resumes from its last finished step, nothing counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.errors import ConfigError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _kill_mid_task(folder: Path, task_id: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(HERE / "resume_worker.py"), str(folder), task_id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = folder / "in-expert"
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the worker exited ({proc.returncode}) before reaching the expert step:\n{out}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _runs(folder: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in (folder / "runs.log").read_text().splitlines()]  # type: ignore[misc]


@pytest.mark.slow
def test_a_task_killed_mid_way_resumes_with_its_spend_and_nothing_twice(tmp_path: Path) -> None:
    import resume_worker
    from sqlalchemy import select

    from agentroute.store import CallRow, DecisionRow, LedgerRow, StepRow, get_engine

    _kill_mid_task(tmp_path, "task-1")
    before = _runs(tmp_path)
    assert [name for name, _ in before] == ["triage", "expert"]

    app, team, tracing = resume_worker.build(tmp_path, crash=False)
    assert app.unfinished() == {"task-1": {"owner": "worker-a"}}
    assert app.unfinished(owner="worker-b") == {}
    with pytest.raises(ConfigError, match=r"app\.resume"):  # the bug this fixes: a rerun started over, budget fresh
        app.run({"input": "Why is the sky blue?"}, task_id="task-1")

    carried = team.spent.usd  # what triage committed on the shared ledger before the kill
    assert carried is not None and carried > 0
    result = app.resume("task-1", budget=team)
    tracing.flush()

    after = _runs(tmp_path)[len(before):]
    assert [name for name, _ in after] == ["expert", "final"]  # triage did not run again
    assert result.reason == "completed" and not result.truncated
    assert result.steps == 3 and result.spent.steps == 3
    assert result.state["output"] and "__agentroute__" not in result.state
    assert app.unfinished() == {}

    eng = get_engine(f"sqlite:///{tmp_path / 'run.db'}")
    with eng.connect() as cx:
        calls = cx.execute(select(CallRow).where(CallRow.task_id == "task-1")).all()
        steps = cx.execute(select(StepRow).where(StepRow.task_id == "task-1").order_by(StepRow.step)).all()
        decisions = cx.execute(select(DecisionRow).where(DecisionRow.task_id == "task-1")
                               .order_by(DecisionRow.idx)).all()
        commits = cx.execute(select(LedgerRow).where(LedgerRow.task_id == "task-1", LedgerRow.op == "commit")).all()
    # one call per finished step, each step once, one model decision per step, numbered without a gap or a repeat
    assert Counter(c.agent for c in calls) == {"triage": 1, "expert": 1, "final": 1}
    assert [(s.step, s.agent) for s in steps] == [(0, "triage"), (1, "expert"), (2, "final")]
    assert [(d.idx, d.point) for d in decisions] == [(0, "triage.model"), (1, "expert.model"), (2, "final.model")]
    assert Counter(c.what for c in commits if c.what.startswith("step:")) == {
        "step:triage": 1, "step:expert": 1, "step:final": 1}
    # the spend carried over: the task's total is what its three calls cost, and the shared ledger holds exactly that
    total = sum((Decimal(c.cost_usd) for c in calls), Decimal(0))
    assert result.spent.usd == total
    assert team.spent.usd == total
    assert result.spent.usd > carried
    # the killed step's held reservation runs out with its lease and is given back; nothing stays reserved
    backend = team.ledger.backend
    for _ in range(600):
        backend.reclaim()
        if team.ledger.reserved.steps == 0 and not team.ledger.reserved.usd:
            break
        time.sleep(resume_worker.LEASE / 10)
    assert team.ledger.reserved.steps == 0 and not team.ledger.reserved.usd
    tracing.shutdown()


class Crash(BaseException):
    """What a dying process looks like from inside an agent: nothing after it runs (not an error of the task)."""


def _three(saver: Any, crash: dict[str, bool]) -> Any:
    graph = ar.AgentGraph("three")

    @graph.agent
    def a(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"a": 1}

    @graph.agent
    def b(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        assert "__agentroute__" not in state  # agents never see the runtime's key
        if crash["b"]:
            raise Crash
        return {"b": 1}

    @graph.agent
    def c(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"c": 1}

    graph.start("a")
    graph.route("a", to=["b", ar.END])
    graph.edge("b", "c")
    return graph.compile(ar.policies.Strongest(), checkpointer=saver)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_resume_keeps_the_step_limit_and_refuses_what_it_cannot_resume(store: str, tmp_path: Path,
                                                                         request: pytest.FixtureRequest) -> None:
    from agentroute.store import SqlCheckpointer

    url = f"sqlite:///{tmp_path / 'ck.db'}" if store == "sqlite" else request.getfixturevalue("postgres_url")
    crash = {"b": True}
    app = _three(SqlCheckpointer(url), crash)
    with pytest.raises(Crash):
        app.run({"input": "x"}, task_id="t", budget=ar.Budget(steps=2))
    crash["b"] = False
    # a is spent (1 step of 2): b may run, c may not; the resumed task stops at the limit it started with
    result = app.resume("t")
    assert result.limits.steps == 2 and result.spent.steps == 2
    assert result.truncated and result.reason == "budget:steps"
    assert result.state == {"input": "x", "a": 1, "b": 1}
    with pytest.raises(ConfigError, match="already finished"):
        app.resume("t")
    with pytest.raises(ConfigError, match="no checkpoint"):
        app.resume("never-ran")
    plain = _three(None, crash)
    with pytest.raises(ConfigError, match="needs a checkpointer"):
        plain.resume("t")


async def test_aresume_on_the_same_checkpointer(tmp_path: Path) -> None:
    crash = {"b": True}
    app = _three(f"sqlite:///{tmp_path / 'ck.db'}", crash)  # a store URL is a checkpointer too
    with pytest.raises(Crash):
        await app.arun({"input": "x"}, task_id="t", labels={"owner": "me"})
    crash["b"] = False
    assert app.unfinished(owner="me") == {"t": {"owner": "me"}}
    result = await app.aresume("t")
    assert result.reason == "completed" and result.spent.steps == 3
    assert result.state == {"input": "x", "a": 1, "b": 1, "c": 1}


def _chain(n: int, crash_at: dict[str, int], saver: Any) -> Any:
    graph = ar.AgentGraph("chain")
    tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]

    def make(i: int) -> Any:
        def agent(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            if crash_at.get("step") == i:
                raise Crash
            reply = ctx.complete([{"role": "user", "content": f"{state['input']} {i}"}], max_tokens=48)
            return {f"a{i}": reply.text}
        return agent

    for i in range(n):
        graph.add_agent(f"a{i}", make(i), tiers=tiers)
        if i:
            graph.edge(f"a{i - 1}", f"a{i}")
    graph.start("a0")
    return graph.compile(ar.policies.Cheapest(), ar.providers.Simulated(seed=5), checkpointer=saver)


@settings(max_examples=12)
@given(n=st.integers(2, 5), at=st.integers(0, 4), usd=st.sampled_from([None, "0.0002", "0.0005", "0.01"]))
def test_property_a_resumed_task_ends_as_if_it_never_crashed(n: int, at: int, usd: str | None) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    assume(at < n)
    budget = ar.Budget(usd=usd, steps=n + 1)
    plain = _chain(n, {}, None).run({"input": "q"}, budget=budget)
    crash: dict[str, int] = {"step": at}
    app = _chain(n, crash, InMemorySaver())
    try:
        app.run({"input": "q"}, task_id="t", budget=budget)
    except Crash:
        pass
    else:  # the budget ended the task before the crash point: nothing to resume
        assume(False)
    crash.clear()
    resumed = app.resume("t")
    assert resumed.state == plain.state and resumed.reason == plain.reason
    assert resumed.spent.usd == plain.spent.usd and resumed.spent.steps == plain.spent.steps == resumed.steps
    # what ran after the crash decided exactly what the uninterrupted run decided there, with the same numbers
    assert [(d.index, d.point, d.chosen) for d in resumed.decisions] == \
        [(d.index, d.point, d.chosen) for d in plain.decisions if d.index >= at]
