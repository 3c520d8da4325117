"""Issue 13 item 2: tier parameters that change what a call may spend are in its worst case, or refused.

Every call runs the real path (LiteLLM's OpenAI client over HTTP) against :class:`FakeOpenAIServer`, which generates
``n`` answers when asked and counts tool definitions and response formats as prompt tokens, as providers bill them.
The check is always the same: what the server really generated, priced, never exceeds the task's USD limit.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.errors import ConfigError
from agentroute.testing import FakeOpenAIServer

PIN, POUT = Decimal("0.000001"), Decimal("0.000004")


@pytest.fixture()
def server():
    with FakeOpenAIServer(completion_tokens=10_000) as s:  # answers fill whatever max_tokens allows
        yield s


def tier(url: str, **params: Any) -> ar.ModelTier:
    return ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=url, params={"api_key": "k", **params},
                        input_cost_per_token=PIN, output_cost_per_token=POUT, max_tokens=4000, timeout=10)


def run_once(t: ar.ModelTier, usd: str) -> ar.RunResult:
    g = ar.AgentGraph("params")

    def ask(state, ctx):
        return {"answer": ctx.complete([{"role": "user", "content": state["question"]}]).text}

    g.add_agent("ask", ask, tiers=[t])
    g.start("ask")
    app = g.compile(policy=ar.policies.Cheapest(), max_retries=0)
    return app.run({"question": "please answer this question at length"}, budget=ar.Budget(usd=usd))


TOOLS = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": "a tool with a long description " * 8,
    "parameters": {"type": "object", "properties": {f"arg_{j}": {"type": "string", "description": "an argument"}
                                                    for j in range(6)}}}} for i in range(6)]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "properties": {f"field_{j}": {"type": "string", "description": "a field of the answer " * 4}
                                     for j in range(30)}}}}


@pytest.mark.parametrize("params", [
    {"n": 5},
    {"extra_body": {"n": 5}},
    {"best_of": 3, "n": 2},
    {"tools": TOOLS},
    {"functions": [t["function"] for t in TOOLS]},
    {"response_format": SCHEMA},
    {"extra_body": {"tools": TOOLS, "n": 3}},
], ids=["n", "extra_body-n", "best_of", "tools", "functions", "response_format", "extra_body-tools-n"])
def test_the_provider_never_generates_past_the_limit(server, params):
    limit = "0.002"
    res = run_once(tier(server.url, **params), limit)
    assert res.calls and res.calls[-1].error_type is None
    billed = server.billed_usd(PIN, POUT)
    assert Decimal(0) < billed <= Decimal(limit)
    assert res.spent.usd <= Decimal(limit)  # the honest server reports all of it: charged in full, within the limit


def test_without_counting_them_the_same_call_would_overspend(server, monkeypatch):
    # the control: with the worst case blind to n and tools (as before issue 13), the same tier overspends, so the
    # test above can fail
    monkeypatch.setattr(ar.llm, "param_tokens", lambda t, rough=False: 0)
    monkeypatch.setattr(ar.ModelTier, "choices", property(lambda t: 1))
    real = ar.llm.call_kwargs
    monkeypatch.setattr(ar.llm, "call_kwargs", lambda kw, m, mt, to, ch=1: real(kw, m, mt, to, 99))
    with warnings.catch_warnings():  # the overspend is reported (a warning, or a violation once settlement flags it)
        warnings.simplefilter("ignore")
        run_once(tier(server.url, tools=TOOLS, n=4), "0.002")
    assert server.billed_usd(PIN, POUT) > Decimal("0.002")


def test_n_divides_the_answer_cap(server):
    run_once(tier(server.url), "0.002")
    run_once(tier(server.url, n=4), "0.002")
    one, four = (r["body"]["max_tokens"] for r in server.requests)
    assert four <= one // 4 + 1 and server.requests[1]["body"]["n"] == 4


@settings(max_examples=20)
@given(n=st.integers(1, 6), tools=st.integers(0, 6), usd=st.decimals("0.0006", "0.01", places=5),
       where=st.sampled_from(["top", "extra_body"]))
def test_property_billed_never_exceeds_the_limit(n, tools, usd, where):
    params: dict[str, Any] = {"n": n, **({"tools": TOOLS[:tools]} if tools else {})}
    if where == "extra_body":
        params = {"extra_body": params}
    with FakeOpenAIServer(completion_tokens=10_000) as s:
        res = run_once(tier(s.url, **params), str(usd))
    assert s.billed_usd(PIN, POUT) <= usd
    assert res.spent.usd is not None and res.spent.usd <= usd


@pytest.mark.parametrize(("params", "named"), [
    ({"max_tokens": 5000}, "max_tokens"),
    ({"max_completion_tokens": 5000}, "max_completion_tokens"),
    ({"extra_body": {"max_tokens": 5000}}, "max_tokens"),
    ({"extra_body": {"max_completion_tokens": 5000}}, "max_completion_tokens"),
    ({"stream": True}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"num_retries": 3}, "num_retries"),
    ({"max_retries": 3}, "max_retries"),
    ({"extra_body": {"use_beam_search": True}}, "use_beam_search"),
    ({"extra_body": "n=5"}, "extra_body"),
    ({"n": 0}, "'n'"),
    ({"n": True}, "'n'"),
    ({"best_of": "5"}, "best_of"),
    ({"service_tier": "priority"}, "service_tier"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"tools": [object()]}, "tools"),
])
def test_a_parameter_that_cannot_be_bounded_is_a_config_error_naming_tier_and_parameter(params, named):
    with pytest.raises(ConfigError, match=named) as e:
        ar.ModelTier("big", model="openai/gpt-4o-mini", params=params)
    assert "'big'" in str(e.value) and "\n" not in str(e.value).split(" (hint")[0]


def test_harmless_and_bounded_parameters_are_accepted():
    t = ar.ModelTier("ok", model="openai/gpt-4o-mini", params={
        "temperature": 0, "api_key": "x", "extra_body": {"top_k": 5, "guided_json": {"type": "object"}, "n": 2},
        "tools": TOOLS[:1], "tool_choice": "auto"})
    assert t.choices == 2
    priced = ar.ModelTier("p", model="openai/gpt-4o-mini", input_cost_per_token="0.000001",
                          output_cost_per_token="0.000002", params={"service_tier": "priority"})
    assert priced.choices == 1


def test_a_provider_cannot_widen_the_cap_through_its_own_arguments(server):
    class Wide(ar.providers.Live):
        def kwargs_for(self, t):
            return {**super().kwargs_for(t), "max_completion_tokens": 9999, "n": 7,
                    "extra_body": {"max_tokens": 9999, "best_of": 7}}

    g = ar.AgentGraph("wide")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": "hi"}]).text},
                tiers=[tier(server.url)])
    g.start("ask")
    g.compile(policy=ar.policies.Cheapest(), provider=Wide(), max_retries=0).run({}, budget=ar.Budget(usd="0.002"))
    body = server.requests[0]["body"]
    caps = [body[k] for k in ("max_tokens", "max_completion_tokens") if k in body]
    assert caps and max(caps) < 9999 and body.get("n", 1) == 1 and body.get("best_of", 1) == 1
    assert server.billed_usd(PIN, POUT) <= Decimal("0.002")
