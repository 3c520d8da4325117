"""The real HTTP path: LiteLLM's OpenAI client against a local OpenAI-compatible server that fails on demand."""

import os

import pytest

import agentroute as ar
from agentroute.testing import FakeOpenAIServer, RecordingHooks

SECRET = "sk-test-very-secret-key-123"


@pytest.fixture()
def server():
    os.environ["FAKE_OPENAI_KEY"] = SECRET
    with FakeOpenAIServer() as s:
        yield s
    os.environ.pop("FAKE_OPENAI_KEY", None)


def http_tiers(url, timeout=5.0):
    return [ar.ModelTier("small", model="openai/gpt-4o-mini", api_base=url, api_key_env="FAKE_OPENAI_KEY",
                         timeout=timeout),
            ar.ModelTier("large", model="openai/gpt-4o", api_base=url, api_key_env="FAKE_OPENAI_KEY",
                         timeout=timeout)]


def one_agent(tiers):
    g = ar.AgentGraph("http")

    def ask(state, ctx):
        return {"answer": ctx.complete([{"role": "user", "content": state["question"]}], max_tokens=50).text}

    g.add_agent("ask", ask, tiers=tiers)
    g.start("ask")
    return g


def test_a_429_is_retried_and_every_attempt_is_recorded(server):
    server.plan = [429]
    hooks = RecordingHooks()
    app = one_agent(http_tiers(server.url)).compile(policy=ar.policies.Cheapest(), hooks=[hooks])
    app.retry_backoff = 0.01
    res = app.run({"question": "hello there"}, budget=ar.Budget(usd="0.01"))
    assert res.state["answer"] == "hello from the fake server"
    assert [(c.tier, c.attempt, c.error_type) for c in res.calls] == [("small", 1, "RateLimitError"),
                                                                     ("small", 2, None)]
    assert len(server.requests) == 2 and server.requests[0]["body"]["max_tokens"] == 50
    assert server.requests[0]["auth"] == f"Bearer {SECRET}"
    # the key reached the server, but no record of the run holds it
    everything = repr(hooks.__dict__) + repr(res)
    assert SECRET not in everything


def test_5xx_exhausts_retries_then_falls_back_to_another_tier(server):
    server.plan = [500, 500, 500]
    app = one_agent(http_tiers(server.url)).compile(policy=ar.policies.Cheapest(), max_retries=2)
    app.retry_backoff = 0.01
    res = app.run({"question": "hello"}, budget=ar.Budget(usd="0.01"))
    assert [(c.tier, c.fallback) for c in res.calls] == [("small", False)] * 3 + [("large", True)]
    assert res.completed and res.spent.usd > 0
    assert [server.requests[i]["body"]["model"] for i in (0, 3)] == ["gpt-4o-mini", "gpt-4o"]


def test_a_stalled_call_times_out_within_the_time_budget(server):
    server.plan = [("stall", 3.0)]
    app = one_agent(http_tiers(server.url, timeout=30)).compile(policy=ar.policies.Cheapest(), max_retries=1)
    app.retry_backoff = 0.01
    res = app.run({"question": "hello"}, budget=ar.Budget(seconds=1.0))
    first = res.calls[0]
    assert first.error_type is not None and first.timeout is not None and first.timeout <= 1.0
    assert res.spent.seconds < 2.5


def test_missing_key_variable_is_a_config_error(server):
    tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini", api_base=server.url, api_key_env="NOPE_NOT_SET")]
    app = one_agent(tiers).compile(policy=ar.policies.Cheapest())
    with pytest.raises(ar.ConfigError, match="NOPE_NOT_SET"):
        app.run({"question": "x"})
