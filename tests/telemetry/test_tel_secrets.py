"""A registered secret of any shape never reaches a span, a row, ``traces show``, an export or a stored error text,
not even JSON-escaped, URL-encoded or repr'd inside a provider's error body."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from agentroute.budget import Budget, Spend
from agentroute.cli import main
from agentroute.records import CallRecord, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import Candidate, DecisionRecord, Masked
from agentroute.store import get_engine
from agentroute.telemetry import configure_tracing, register_secret, unregister_secret

# no known key shape, and characters that JSON, URLs and repr all escape differently
SECRET = 'zq81 "Opaque"/$Värde\\42'


@pytest.fixture()
def secret():
    register_secret(SECRET)
    yield SECRET
    unregister_secret(SECRET)


def _forms(s: str) -> list[str]:
    return [s, json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1], quote(s, safe=""), repr(s)[1:-1]]


def _emit(hooks, task_id: str, s: str) -> None:
    t0 = time.time_ns()
    hooks.on_task_start(TaskStart(task_id, "support", "rules", "1", Budget(usd="1"), None,
                                  {"question": f"my header is {s}"}, t0))
    hooks.on_step_start(StepStart(task_id, 0, "triage", t0 + 1))
    body = json.dumps({"error": {"message": f"bad header {s}", "url": "/v1/chat?h=" + quote(s, safe="")}})
    hooks.on_model_call(CallRecord(task_id, 0, "triage", "small", "openai/x", "openai", 1, False, 64, 30.0, 3, 0,
                                   Decimal(0), t0 + 2, t0 + 3, error_type="BadRequestError", error=body,
                                   messages=[{"role": "user", "content": f"header {s}"}], completion=f"ok {s!r}"))
    hooks.on_decision(DecisionRecord(
        task_id=task_id, index=0, kind="model", point="triage.model", node="triage", step=0, chosen="small",
        probabilities={"small": 1.0}, scores={}, reason=f"routed by header {s}", policy="rules",
        policy_version="1", explored=False,
        candidates=(Candidate("small", "model", descriptor={"route": s, "note": f"[{s!r}]"}),),
        masked=(Masked("large", f"header {quote(s)} forbids it"),), budget_before={"usd": "1"},
        evidence={"matched": json.dumps({"h": s})}, decided_ns=t0 + 2))
    hooks.on_step_end(StepEnd(task_id, 0, "triage", t0 + 1, t0 + 4, Decimal(0), 3, "BadRequestError"))
    hooks.on_task_end(RunResult(task_id, {}, Spend(), Budget(usd="1"), False, "error",
                                error=RuntimeError(f"provider said: {body}; key={s!r}"), started_ns=t0,
                                ended_ns=t0 + 5))


def test_a_registered_secret_of_any_shape_is_scrubbed_everywhere(tmp_path, secret):
    url = f"sqlite:///{tmp_path / 'secrets.db'}"
    mem = InMemorySpanExporter()
    tracing = configure_tracing(exporters="none", store_url=url, capture_content=True, span_exporters=[mem])
    _emit(tracing.hooks[0], "t-secret", secret)
    assert tracing.flush()
    texts = []
    for s in mem.get_finished_spans():
        texts += [s.name, json.dumps(dict(s.attributes), default=str), s.status.description or ""]
        texts += [json.dumps(dict(e.attributes), default=str) for e in s.events]
    assert any("BadRequestError" in t for t in texts) and any("[REDACTED]" in t for t in texts)
    with get_engine(url).connect() as conn:
        for table in ("agentroute_tasks", "agentroute_steps", "agentroute_decisions", "agentroute_model_calls"):
            texts += [json.dumps(list(row), default=str) for row in conn.execute(text(f"select * from {table}"))]
    runner = CliRunner()
    for args in (["show", "t-secret"], ["show", "t-secret", "--json"]):
        r = runner.invoke(main, ["traces", *args, "--db", url])
        assert r.exit_code == 0, r.output
        texts.append(r.output)
    out = tmp_path / "d.jsonl"
    assert runner.invoke(main, ["traces", "export", "--db", url, "--out", str(out), "--quiet"]).exit_code == 0
    texts.append(out.read_text())
    blob = "\n".join(texts)
    assert "header" in blob and "provider said" in blob  # the texts are there, only the secret is not
    leaked = [f for f in _forms(secret) if f in blob]
    assert leaked == []
    tracing.shutdown()
