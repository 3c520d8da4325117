"""Issue 13 item 4: a task's ``seconds`` limit holds around the whole call, sync and async, whatever the provider does.

The provider is :class:`FakeOpenAIServer` over real HTTP through LiteLLM's OpenAI client. Its ``trickle`` mode sends
the body a few bytes at a time, so no single read ever waits long and LiteLLM's timeout never fires; before the hard
deadline a 1 s task waited for the whole body. The assertions read the budget's own clock (``result.spent.seconds``)
against the limit plus :data:`TOLERANCE`, which is generous on purpose (a loaded 2-core machine); the overrun a task
really shows is measured by ``benchmarks/faults.py`` (README, "What the budget guarantee assumes").
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import agentroute as ar
from agentroute.policies.baselines import Cheapest
from agentroute.testing import FakeOpenAIServer

TOLERANCE = 1.0
"""Seconds past the limit a task may take to settle and leave the graph, on a loaded machine (measured: ~0.01 s)."""
LIMIT = 1.0
REPO = Path(__file__).resolve().parents[2]


def tiers(url: str) -> list[ar.ModelTier]:
    return [ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=url, params={"api_key": "k"}, timeout=60,
                         input_cost_per_token="0.000001", output_cost_per_token="0.000004")]


def app_for(url: str, *, is_async: bool, policy=None, max_retries: int = 0) -> ar.App:
    g = ar.AgentGraph("seconds")
    if is_async:
        async def ask(state, ctx):
            return {"a": (await ctx.acomplete([{"role": "user", "content": "hi"}], max_tokens=20)).text}
    else:
        def ask(state, ctx):
            return {"a": ctx.complete([{"role": "user", "content": "hi"}], max_tokens=20).text}
    g.add_agent("ask", ask, tiers=tiers(url))
    g.add_agent("after", lambda s, ctx: {"after": True})
    g.edge("ask", "after")
    g.start("ask")
    return g.compile(policy=policy or Cheapest(), max_retries=max_retries)


def run(app: ar.App, budget: ar.Budget, is_async: bool) -> ar.RunResult:
    if is_async:
        return asyncio.run(app.arun({"question": "hi"}, budget=budget))
    return app.run({"question": "hi"}, budget=budget)


@pytest.fixture()
def server():
    with FakeOpenAIServer() as s:
        yield s


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("budget", [ar.Budget(seconds=LIMIT), ar.Budget(seconds=LIMIT, usd="0.01")],
                         ids=["seconds", "seconds+usd"])
def test_a_trickling_body_cannot_hold_a_task_past_its_seconds(server, is_async, budget):
    app = app_for(server.url, is_async=is_async)
    run(app, ar.Budget(seconds=30), is_async)  # warm: this process's first call may load LiteLLM's client
    server.plan = [("trickle", 8.0)]
    res = run(app, budget, is_async)
    assert res.truncated and res.reason == "budget:seconds"
    assert res.spent.seconds <= LIMIT + TOLERANCE
    assert [c.error_type for c in res.calls] == ["CallDeadline"]
    assert "after" not in res.state  # no step runs once the time is up
    assert len(server.requests) == 2


def test_without_the_deadline_the_same_task_overruns(server, monkeypatch):
    # the control: LiteLLM's own timeout alone (what ran before issue 13) lets the trickle through, so the test
    # above can fail
    from agentroute import _llm_clock, llm

    monkeypatch.setattr(_llm_clock, "complete_within", lambda kwargs, seconds: llm.complete(kwargs))
    server.plan = [("trickle", 3.0)]
    res = run(app_for(server.url, is_async=False), ar.Budget(seconds=LIMIT), False)
    assert res.spent.seconds > LIMIT + 1.5


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_retries_and_backoff_stay_within_the_seconds(server, is_async):
    server.default = 500
    app = app_for(server.url, is_async=is_async, max_retries=20)
    app.retry_backoff = 0.3
    res = run(app, ar.Budget(seconds=LIMIT), is_async)
    assert res.truncated and res.reason.startswith("budget:seconds")
    assert res.spent.seconds <= LIMIT + TOLERANCE
    assert len(res.calls) >= 2


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_silent_stall_times_out_within_the_seconds(server, is_async):
    server.plan = [("stall", 6.0)]
    res = run(app_for(server.url, is_async=is_async), ar.Budget(seconds=LIMIT), is_async)
    assert res.truncated and res.reason.startswith("budget:seconds")
    assert res.spent.seconds <= LIMIT + TOLERANCE


class Slow(Cheapest):
    """Decides like Cheapest, after a pause: a slow policy spends the task's time too."""

    name = "slow"

    def decide(self, obs):
        time.sleep(LIMIT * 1.2)
        return super().decide(obs)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_policy_s_decision_time_counts(server, is_async):
    res = run(app_for(server.url, is_async=is_async, policy=Slow()), ar.Budget(seconds=LIMIT), is_async)
    assert res.truncated and res.reason.startswith("budget:seconds")
    assert res.calls == [] and server.requests == []  # nothing is called once the decision used up the time
    assert res.spent.seconds <= LIMIT * 1.2 + TOLERANCE


@pytest.mark.slow
def test_litellm_import_and_warm_up_happen_before_the_first_task_s_clock(tmp_path):
    # a fresh interpreter: when the first task's ledger starts its clock, LiteLLM and its OpenAI client are loaded
    script = tmp_path / "cold.py"
    script.write_text(textwrap.dedent("""
        import sys
        import agentroute as ar
        from agentroute import budget
        from agentroute.testing import FakeOpenAIServer

        seen = []
        real = budget.Ledger.__init__

        def spy(self, *a, **kw):
            seen.append({m for m in ("litellm", "openai.resources.chat.completions") if m in sys.modules})
            real(self, *a, **kw)

        budget.Ledger.__init__ = spy
        with FakeOpenAIServer() as s:
            t = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=s.url, params={"api_key": "k"},
                             input_cost_per_token="0.000001", output_cost_per_token="0.000004")
            g = ar.AgentGraph("cold")
            g.add_agent("ask", lambda st, ctx: {"a": ctx.complete([{"role": "user", "content": "hi"}]).text},
                        tiers=[t])
            g.start("ask")
            app = g.compile(policy=ar.policies.Cheapest())
            res = app.run({"question": "hi"}, budget=ar.Budget(seconds=60))
        assert res.completed, res.reason
        assert seen and seen[0] == {"litellm", "openai.resources.chat.completions"}, seen
        print("first call", res.calls[0].ended_ns - res.calls[0].started_ns)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
