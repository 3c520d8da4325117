"""Served tool definitions count in the reserved input, and a streamed reply stops at the reserved bound.

A bare router whose tier sends tool definitions, served with tenants, called through the real ``openai`` client
(streaming and not) until its key's budget runs out; upstream is :class:`FakeOpenAIServer`, which bills tool
definitions as prompt tokens and answers with as many tokens as ``max_tokens`` allows. What it really generated,
priced, never passes a task's limit or the key's budget; the control (tool tokens left out of the worst case)
overspends on the same request, so the check can fail.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest
from serve_helpers import UvicornThread

import agentroute as ar
from agentroute.serve import Router, create_app, parse_tenants
from agentroute.testing import FakeOpenAIServer

PIN, POUT = Decimal("0.000001"), Decimal("0.000004")
PER_TASK, KEY_BUDGET = Decimal("0.002"), Decimal("0.005")
TENANTS = f"""\
tenants:
  - name: tooling
    per_task: {{usd: "{PER_TASK}"}}
    keys:
      - {{name: agent, key: "sk-tools-agent-1", budget: {{usd: "{KEY_BUDGET}"}}}}
"""
TOOLS = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": "a tool with a long description " * 8,
    "parameters": {"type": "object", "properties": {f"arg_{j}": {"type": "string", "description": "an argument"}
                                                    for j in range(6)}}}} for i in range(6)]
MSG = [{"role": "user", "content": "please answer this question at length"}]


@pytest.fixture()
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(completion_tokens=10_000) as s:  # answers fill whatever max_tokens allows
        yield s


def _served(url: str) -> Any:
    tier = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=url, params={"api_key": "k", "tools": TOOLS},
                        input_cost_per_token=PIN, output_cost_per_token=POUT, max_tokens=4000, timeout=10)
    router = Router("tools", [tier], ar.policies.Cheapest(), max_retries=0)
    return create_app({"tools": router}, tenants=parse_tenants(TENANTS, source="tenants.yaml"), store="none")


def _cost(prompt: int, completion: int) -> Decimal:
    return PIN * prompt + POUT * completion


def test_tool_definitions_are_reserved_and_streams_stop_at_the_bound(upstream: FakeOpenAIServer) -> None:
    with UvicornThread(_served(upstream.url)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-tools-agent-1", max_retries=0)
        streamed: list[Any] = []
        refused = 0
        for i in range(8):
            try:
                if i % 2:
                    chunks = list(client.chat.completions.create(model="router/tools", messages=MSG, stream=True,  # type: ignore[arg-type]
                                                                 stream_options={"include_usage": True}))
                    streamed.append((len(upstream.billed) - 1, chunks[-1].usage))
                else:
                    client.chat.completions.create(model="router/tools", messages=MSG)  # type: ignore[arg-type]
            except (openai.RateLimitError, openai.APIError):
                refused += 1
    assert refused and len(upstream.billed) >= 2  # the key's budget ran out, after real calls
    tools_words = sum(len(str(t).split()) for t in TOOLS)
    for prompt, completion in upstream.billed:
        assert prompt > tools_words // 2  # the tool definitions were sent (and billed as input)
        assert _cost(prompt, completion) <= PER_TASK  # each task within its own limit, tools included
    assert upstream.billed_usd(PIN, POUT) <= KEY_BUDGET  # and the key within its budget
    assert streamed
    for call, usage in streamed:  # a streamed reply carries what was generated within the reservation, no more
        prompt, completion = upstream.billed[call]
        assert usage.completion_tokens == completion <= upstream.requests[call]["body"]["max_tokens"]
        assert _cost(usage.prompt_tokens, usage.completion_tokens) <= PER_TASK


def test_without_counting_the_tools_the_same_request_would_overspend(upstream: FakeOpenAIServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ar.llm, "param_tokens", lambda t, rough=False: 0)
    with UvicornThread(_served(upstream.url)) as server, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-tools-agent-1", max_retries=0)
        client.chat.completions.create(model="router/tools", messages=MSG)  # type: ignore[arg-type]
    prompt, completion = upstream.billed[0]
    assert _cost(prompt, completion) > PER_TASK
