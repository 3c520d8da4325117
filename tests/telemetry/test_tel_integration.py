"""Real graphs (LangGraph + LiteLLM + the simulated provider) traced to memory, the SQL store and OTLP."""

from __future__ import annotations

import json
import secrets
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from tel_receivers import HttpReceiver

from agentroute import Budget, ModelTier, policies, providers
from agentroute import _telemetry_attrs as A
from agentroute._telemetry_redact import contains_secret
from agentroute.examples import support_graph, support_tasks
from agentroute.store import CallRow, DecisionRow, StepRow, TaskRow, get_engine
from agentroute.telemetry import configure_tracing
from agentroute.testing import RecordingHooks

BUDGET = Budget(usd="0.004", tokens=3000, steps=4)


def _questions(n: int) -> list[dict[str, Any]]:
    return [{"question": t["question"]} for t in support_tasks(n, seed=1)]


def test_a_real_run_is_stored_exactly_as_recorded(store_url):
    rec = RecordingHooks()
    tracing = configure_tracing(exporters="none", store_url=store_url)
    app = support_graph().compile(
        policy=policies.CascadePolicy(threshold=0.6), provider=providers.Simulated(seed=0), hooks=[*tracing.hooks, rec]
    )
    results = [app.run(q, budget=BUDGET) for q in _questions(6)]
    app.flush()
    engine = get_engine(store_url)
    with Session(engine) as s:
        for r in results:
            task = s.get(TaskRow, r.task_id)
            assert task is not None and task.status == ("truncated" if r.truncated else "completed")
            assert Decimal(task.spent_usd) == r.spent.usd and task.spent_tokens == r.spent.tokens
            assert task.steps == r.steps and task.graph == "support" and task.policy == "cascade"
            rows = s.exec(select(DecisionRow).where(DecisionRow.task_id == r.task_id).order_by(DecisionRow.idx)).all()
            assert [(d.idx, d.kind, d.chosen, d.propensity) for d in rows] == [
                (d.index, d.kind, d.chosen, d.propensity) for d in r.decisions
            ]
            for row, d in zip(rows, r.decisions, strict=True):
                assert row.candidates == [c.id for c in d.candidates]
                assert row.probabilities == [float(d.probabilities.get(c.id, 0.0)) for c in d.candidates]
                assert (row.cost_usd is None and d.cost_usd is None) or Decimal(row.cost_usd) == d.cost_usd
            calls = s.exec(select(CallRow).where(CallRow.task_id == r.task_id).order_by(CallRow.started_ns)).all()
            assert [(c.tier, c.input_tokens, c.output_tokens, c.step) for c in calls] == [
                (c.tier, c.input_tokens, c.output_tokens, c.step) for c in r.calls
            ]
            steps = s.exec(select(StepRow).where(StepRow.task_id == r.task_id)).all()
            assert len(steps) == r.steps
    assert len(rec.decisions) == sum(len(r.decisions) for r in results)
    tracing.shutdown()


def test_real_span_tree(capture):
    app = support_graph().compile(
        policy=policies.Fixed("large"), provider=providers.Simulated(seed=0), hooks=[capture.hooks]
    )
    r = app.run({"question": "Compare the data processing terms under EU law"}, budget=BUDGET)
    spans = capture.spans()
    (task,) = [s for s in spans if s.name == "invoke_workflow support"]
    steps = {s.context.span_id: s for s in spans if s.name.startswith("invoke_agent")}
    assert len(steps) == r.steps >= 1
    for s in spans:
        if s.name.startswith(("chat ", "route model")):
            assert s.parent.span_id in steps
        elif s.name == "route agent" or s.name.startswith("invoke_agent"):
            assert s.parent.span_id == task.context.span_id
    chat = next(s for s in spans if s.name.startswith("chat "))
    assert chat.attributes["gen_ai.request.model"] == "openai/gpt-4o" and chat.attributes[A.TIER] == "large"
    assert chat.attributes["gen_ai.provider.name"] == app.provider.provider_name(app.graph.tiers()[1])
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    for s in steps.values():  # children lie within their step
        kids = [
            c
            for c in spans
            if c.parent is not None and c.parent.span_id == s.context.span_id and c.name.startswith("chat ")
        ]
        assert all(s.start_time <= c.start_time and c.end_time <= s.end_time for c in kids)


def test_a_truncated_run_is_marked_truncated(store_url):
    tracing = configure_tracing(exporters="none", store_url=store_url)
    app = support_graph().compile(
        policy=policies.Strongest(), provider=providers.Simulated(seed=0), hooks=tracing.hooks
    )
    r = app.run(
        {"question": "Explain how the contract renewal clause works for our May subsidiary"},
        budget=Budget(usd="0.004", tokens=3000, steps=1),
    )
    tracing.flush()
    with Session(get_engine(store_url)) as s:
        task = s.get(TaskRow, r.task_id)
    assert r.truncated and task.status == "truncated" and task.truncated and task.reason == r.reason
    assert task.reason.startswith("budget")
    tracing.shutdown()


def test_async_batch_lands_every_task(tmp_path):
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    tracing = configure_tracing(exporters="none", store_url=url)
    app = support_graph().compile(
        policy=policies.Random(seed=3), provider=providers.Simulated(seed=0), hooks=tracing.hooks
    )
    results = app.batch(_questions(24), budget=BUDGET, concurrency=8)
    tracing.flush()
    with get_engine(url).connect() as conn:
        n_tasks = conn.execute(text("select count(*) from agentroute_tasks where status != 'running'")).scalar()
        n_dec = conn.execute(text("select count(*) from agentroute_decisions")).scalar()
    assert n_tasks == 24 and n_dec == sum(len(r.decisions) for r in results)
    tracing.shutdown()


def test_a_real_run_over_otlp_http():
    with HttpReceiver() as rx:
        tracing = configure_tracing(exporters="none", otlp=rx.endpoint)
        app = support_graph().compile(
            policy=policies.Cheapest(), provider=providers.Simulated(seed=0), hooks=tracing.hooks
        )
        r = app.run({"question": "My invoice is wrong for order 7"}, budget=BUDGET)
        tracing.flush()
        tracing.shutdown()
    (task,) = rx.named("invoke_workflow support")
    assert task["attributes"][A.TASK_ID] == r.task_id
    assert len(rx.named("invoke_agent ")) == r.steps
    assert len(rx.named("chat ")) == len(r.calls) and len(rx.named("route ")) == len(r.decisions)


class _EchoingAuthServer:
    """An OpenAI-compatible endpoint that rejects the key and echoes it back, as real providers do."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                body = json.dumps(
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {key}",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    }
                ).encode()
                self.send_response(401)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("shape", ["sk-", "opaque-"])
def test_an_api_key_never_reaches_a_span_or_a_row(tmp_path, monkeypatch, shape, capture):
    key = shape + secrets.token_hex(16)
    monkeypatch.setenv("ACME_LLM_API_KEY", key)
    server = _EchoingAuthServer()
    url = f"sqlite:///{tmp_path / 'secret.db'}"
    tracing = configure_tracing(exporters="none", store_url=url, capture_content=True)
    from tel_records import Capture

    spans = Capture(capture_content=True)  # built after the key was exported, like `tracing`
    graph = support_graph(
        tiers=(
            ModelTier(
                "small",
                model="openai/acme-small",
                api_base=server.url,
                api_key_env="ACME_LLM_API_KEY",
                input_cost_per_token="0.000001",
                output_cost_per_token="0.000002",
            ),
        )
    )
    app = graph.compile(
        policy=policies.Cheapest(),
        provider=providers.Live(),
        hooks=[*tracing.hooks, spans.hooks],
        capture_content=True,
        max_retries=0,
    )
    try:
        app.run({"question": f"my key is {key}, why does it fail?", "api_key": key}, budget=BUDGET)
    except Exception as e:  # the call fails: that is the point
        assert key in str(e) or "401" in str(e) or "Authentication" in type(e).__name__ + str(e)
    finally:
        server.close()
    tracing.flush()
    texts = []
    for s in spans.spans():
        texts += [s.name, json.dumps(dict(s.attributes), default=str), s.status.description or ""]
        texts += [json.dumps(dict(e.attributes), default=str) for e in s.events]
    assert any("AuthenticationError" in t or "401" in t for t in texts), "the failed call must be recorded"
    with get_engine(url).connect() as conn:
        for table in (
            "agentroute_tasks",
            "agentroute_steps",
            "agentroute_decisions",
            "agentroute_model_calls",
            "agentroute_ledger_events",
        ):
            texts += [json.dumps(list(row), default=str) for row in conn.execute(text(f"select * from {table}"))]
    assert contains_secret(texts, [key]) == []
    tracing.shutdown()
