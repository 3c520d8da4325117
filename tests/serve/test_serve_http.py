"""A real uvicorn server and the real openai client: completions, streaming, models, usage, traces, auth, budgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from serve_helpers import UvicornThread, served, tenants

from agentroute.serve import create_app, tenant_tag

YAML = """\
tenants:
  - name: acme
    budget: {usd: "0.5"}
    per_task: {usd: "0.01"}
    teams:
      - name: ml
        budget: {usd: "0.2"}
        keys:
          - {name: ci, key: "sk-acme-ci-0001", budget: {usd: "0.1"}}
  - name: globex
    keys:
      - {name: main, key: "sk-globex-main-1"}
  - name: tiny
    budget: {usd: "0.004"}
    keys:
      - {name: only, key: "sk-tiny-only-01"}
"""
MSG = [{"role": "user", "content": "My invoice is wrong, please help"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornThread]:
    db = tmp_path_factory.mktemp("serve") / "traces.db"
    app = create_app(served(), tenants=tenants(YAML), store=f"sqlite:///{db}")
    with UvicornThread(app) as s:
        yield s


def client(server: UvicornThread, key: str = "sk-acme-ci-0001") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_models_lists_graphs_and_routers(server: UvicornThread) -> None:
    ids = sorted(m.id for m in client(server).models.list())
    assert ids == ["agentroute/support", "router/tiers"]


@pytest.mark.parametrize("model", ["agentroute/support", "router/tiers"])
def test_a_completion_through_the_openai_client(server: UvicornThread, model: str) -> None:
    raw = client(server).chat.completions.with_raw_response.create(model=model, messages=MSG)  # type: ignore[arg-type]
    task_id = raw.headers["x-agentroute-task-id"]
    done = raw.parse()
    assert task_id.startswith(tenant_tag("acme") + "-") and done.id == f"chatcmpl-{task_id}"
    assert done.model == model and done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content  # the graph's `answer`, the router's model text
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert Decimal(raw.headers["x-agentroute-spent-usd"]) > 0


def test_streaming_through_the_openai_client(server: UvicornThread) -> None:
    stream = client(server).chat.completions.create(model="router/tiers", messages=MSG, stream=True,  # type: ignore[arg-type]
                                                    stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[openai/gpt-4o]") and len(chunks) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= len(text.split()) // 2
    assert len({c.id for c in chunks}) == 1


def test_a_stream_carries_the_tasks_step_and_decision_events_before_its_text(server: UvicornThread) -> None:
    raw = client(server).chat.completions.with_raw_response.create(model="agentroute/support", messages=MSG,  # type: ignore[arg-type]
                                                                   stream=True)
    task_id = raw.headers["x-agentroute-task-id"]
    chunks = list(raw.parse())
    marks = [i for i, c in enumerate(chunks) if (c.model_extra or {}).get("agentroute")]
    events = [chunks[i].model_extra["agentroute"] for i in marks]  # type: ignore[index]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "task_start" and kinds.count("step_start") == kinds.count("step_end") >= 2
    assert {"call", "decision"} <= set(kinds) and "end" not in kinds  # the end is the text itself
    assert {e["task_id"] for e in events} == {task_id}
    texts = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content]
    assert texts and max(marks) < min(texts)  # the events came while the task ran, the text after it
    # the events are the task's own records: the same decisions as its trace
    trace = _trace(server, task_id, "sk-acme-ci-0001").json()
    decided = sorted((e["index"], e["point"], e["chosen"]) for e in events if e["event"] == "decision")
    stored = sorted([(d["idx"], d["point"], d["chosen"]) for d in trace["routes"]]
                    + [(d["idx"], d["point"], d["chosen"]) for s in trace["steps"] for d in s["decisions"]])
    assert decided == stored


def test_a_stream_whose_budget_runs_out_before_any_text_raises_in_the_client(server: UvicornThread) -> None:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-acme-ci-0001", max_retries=0,
                      default_headers={"x-agentroute-budget-usd": "0.0000001"})
    with pytest.raises(openai.APIError, match="budget exhausted"):
        list(c.chat.completions.create(model="agentroute/support", messages=MSG, stream=True))  # type: ignore[arg-type]


def test_the_raw_stream_is_server_sent_events_ending_in_done(server: UvicornThread) -> None:
    body = {"model": "router/tiers", "messages": MSG, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60,
                      headers={"authorization": "Bearer sk-acme-ci-0001"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-agentroute-task-id"]
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_wrong_or_missing_key_is_401(server: UvicornThread) -> None:
    with pytest.raises(openai.AuthenticationError) as e:
        client(server, "sk-not-a-key-123").chat.completions.create(model="router/tiers", messages=MSG)  # type: ignore[arg-type]
    assert e.value.status_code == 401
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "router/tiers", "messages": MSG})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "x-agentroute-task-id" not in r.headers  # nothing ran
    for path in ("/v1/usage", "/v1/models", "/v1/traces/x"):
        assert httpx.get(f"{server.url}{path}", headers={"authorization": "Bearer nope"}).status_code == 401


def _trace(server: UvicornThread, task_id: str, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/traces/{task_id}", headers={"authorization": f"Bearer {key}"}, timeout=60)


def test_a_trace_is_shown_to_its_tenant_only(server: UvicornThread) -> None:
    raw = client(server).chat.completions.with_raw_response.create(model="agentroute/support", messages=MSG)  # type: ignore[arg-type]
    task_id = raw.headers["x-agentroute-task-id"]
    mine = _trace(server, task_id, "sk-acme-ci-0001")
    assert mine.status_code == 200
    tree = mine.json()
    assert tree["task_id"] == task_id and tree["graph"] == "support" and tree["status"] == "completed"
    assert tree["steps"][0]["agent"] == "triage" and tree["steps"][0]["decisions"][0]["kind"] == "model"
    assert tree["steps"][0]["calls"][0]["tier"] in ("small", "large")
    other = _trace(server, task_id, "sk-globex-main-1")
    assert other.status_code == 404 and other.json()["error"]["code"] == "task_not_found"
    assert _trace(server, task_id[:-1] + "0" if task_id[-1] != "0" else task_id[:-1] + "1",
                  "sk-acme-ci-0001").status_code == 404
    assert _trace(server, task_id[:20], "sk-acme-ci-0001").status_code == 404  # no prefix lookups


def _limit_of(server: UvicornThread, header: str | None) -> tuple[int, Any]:
    headers = {"authorization": "Bearer sk-acme-ci-0001"}
    if header is not None:
        headers["x-agentroute-budget-usd"] = header
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=headers, timeout=60,
                   json={"model": "router/tiers", "messages": MSG})
    if r.status_code != 200:
        return r.status_code, r.json()
    return 200, _trace(server, r.headers["x-agentroute-task-id"], "sk-acme-ci-0001").json()["limit_usd"]


def test_the_budget_header_lowers_a_task_budget_and_never_raises_it(server: UvicornThread) -> None:
    assert _limit_of(server, None) == (200, "0.01")
    assert _limit_of(server, "5") == (200, "0.01")  # a raise is ignored: the tenant's per-task limit stands
    assert _limit_of(server, "0.003") == (200, "0.003")
    status, body = _limit_of(server, "lots")
    assert status == 400 and body["error"]["param"] == "x-agentroute-budget-usd"


def test_usage_shows_every_level(server: UvicornThread) -> None:
    r = httpx.get(f"{server.url}/v1/usage", headers={"authorization": "Bearer sk-acme-ci-0001"})
    body = r.json()
    assert (body["tenant"], body["team"], body["key"]) == ("acme", "ml", "ci")
    assert [lv["level"] for lv in body["levels"]] == ["key", "team", "tenant"]
    key, team, tenant = body["levels"]
    assert key["limits"] == {"usd": "0.1"} and team["limits"] == {"usd": "0.2"} and tenant["limits"] == {"usd": "0.5"}
    for lv in body["levels"]:
        spent = Decimal(lv["spent"]["usd"])
        assert spent > 0 and Decimal(lv["remaining"]["usd"]) == Decimal(lv["limits"]["usd"]) - spent
    assert body["per_task"] == {"usd": "0.01"}


def test_over_budget_is_429_with_what_remains_and_no_retry(server: UvicornThread) -> None:
    c = client(server, "sk-tiny-only-01")
    statuses = []
    for _ in range(12):
        try:
            c.chat.completions.create(model="router/tiers", messages=MSG)  # type: ignore[arg-type]
            statuses.append(200)
        except openai.RateLimitError as e:
            statuses.append(429)
            assert e.response.headers["x-should-retry"] == "false"
            body = e.response.json()
            assert body["error"]["code"] == "budget_exhausted" and body["error"]["type"] == "insufficient_quota"
            tenant = body["budget"]["levels"][-1]
            assert tenant["level"] == "tenant" and Decimal(tenant["remaining"]["usd"]) < Decimal("0.004")
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    usage = httpx.get(f"{server.url}/v1/usage", headers={"authorization": "Bearer sk-tiny-only-01"}).json()
    assert Decimal(usage["levels"][-1]["spent"]["usd"]) <= Decimal("0.004")


def test_unknown_model_and_bad_bodies(server: UvicornThread) -> None:
    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(model="agentroute/nope", messages=MSG)  # type: ignore[arg-type]
    h = {"authorization": "Bearer sk-acme-ci-0001"}
    assert httpx.post(f"{server.url}/v1/chat/completions", headers=h, content=b"{").status_code == 400
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=h, json={"model": "router/tiers", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    # the bare name works when it is unambiguous
    assert httpx.post(f"{server.url}/v1/chat/completions", headers=h, timeout=60,
                      json={"model": "tiers", "messages": MSG}).status_code == 200


def test_health_readiness_and_metrics(server: UvicornThread) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["ledger"] == "memory"
    text = httpx.get(f"{server.url}/metrics").text
    assert "# TYPE agentroute_requests_total counter" in text
    assert 'agentroute_requests_total{model="router/tiers",status="200"}' in text
    assert 'agentroute_decisions_total{chosen="large",graph="tiers",kind="model"}' in text
    assert 'agentroute_request_seconds_bucket{model="router/tiers",le="+Inf"}' in text
    assert "agentroute_budget_violations_total 0.0" in text and "agentroute_levels_overspent 0.0" in text
    assert 'agentroute_spend_usd_total{tenant="acme"}' in text


def test_a_provider_that_overgenerates_is_an_overrun_in_headers_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """A served router's provider spends past the reservation: charged in full, said in the reply and in /metrics."""
    import agentroute as ar
    from agentroute.serve import Router
    from agentroute.testing import FakeOpenAIServer

    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-fake-serve-overrun")
    with FakeOpenAIServer() as fake:
        fake.plan = [("overgenerate", 10)]
        tier = ar.ModelTier("small", model="openai/gpt-4o-mini", api_base=fake.url, api_key_env="FAKE_OPENAI_KEY",
                            input_cost_per_token="0.000001", output_cost_per_token="0.000002")
        app = create_app({"liar": Router("liar", [tier], ar.policies.Cheapest(), max_tokens=20)},
                         tenants=tenants(YAML))
        with UvicornThread(app) as s:
            raw = client(s).chat.completions.with_raw_response.create(  # acme: USD limits at every level
                model="router/liar", messages=MSG)  # type: ignore[arg-type]
            billed = fake.billed_usd(Decimal("0.000001"), Decimal("0.000002"))
            assert raw.headers.get("x-agentroute-status") == "overrun", (dict(raw.headers), raw.text)
            assert Decimal(raw.headers["x-agentroute-spent-usd"]) >= billed > 0  # charged what was billed
            metrics = httpx.get(f"{s.url}/metrics", timeout=30).text
            line = next(ln for ln in metrics.splitlines() if ln.startswith("agentroute_budget_violations_total"))
            assert float(line.split()[-1]) >= 1
