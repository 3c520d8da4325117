"""OTelHooks turns hand-made run records into the span tree, names and attributes the docs promise."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from tel_records import Capture, emit_run

from agentroute import _telemetry_attrs as A
from agentroute.records import StepStart
from agentroute.telemetry import SCHEMA_URL, SEMCONV_VERSION


def test_span_tree_names_kinds_and_parents(capture):
    run = emit_run(capture.hooks, n_steps=2)
    spans = capture.spans()
    by_name = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    (task,) = by_name["invoke_workflow support"]
    assert task.parent is None and task.kind is SpanKind.INTERNAL
    steps = by_name["invoke_agent triage"] + by_name["invoke_agent expert"]
    assert [s.attributes[A.STEP_INDEX] for s in steps] == [0, 1]
    assert all(s.parent.span_id == task.context.span_id for s in steps)
    assert all(s.context.trace_id == task.context.trace_id for s in spans)
    chats = by_name["chat openai/small"]
    assert len(chats) == 2 and all(c.kind is SpanKind.CLIENT for c in chats)
    for chat, step in zip(chats, steps, strict=True):
        assert chat.parent.span_id == step.context.span_id
    routes_model = by_name["route model"]
    routes_agent = by_name["route agent"]
    assert len(routes_model) == 2 and len(routes_agent) == 2
    for r, step in zip(routes_model, steps, strict=True):
        assert r.parent.span_id == step.context.span_id
    assert all(r.parent.span_id == task.context.span_id for r in routes_agent)
    assert len(spans) == 1 + 2 + 2 + 4
    # exact bounds taken from the records
    assert task.start_time == run.start.started_ns and task.end_time == run.result.ended_ns
    assert [(s.start_time, s.end_time) for s in steps] == [(e.started_ns, e.ended_ns) for e in run.step_ends]
    assert [(c.start_time, c.end_time) for c in chats] == [(c.started_ns, c.ended_ns) for c in run.calls]
    assert task.instrumentation_scope.schema_url == SCHEMA_URL
    assert SEMCONV_VERSION in SCHEMA_URL


def test_genai_attributes_on_chat_and_agent_spans(capture):
    run = emit_run(capture.hooks, n_steps=1)
    (chat,) = capture.named("chat ")
    a = chat.attributes
    call = run.calls[0]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == call.model
    assert a["gen_ai.request.max_tokens"] == 512
    assert a["gen_ai.response.model"] == call.response_model
    assert a["gen_ai.usage.input_tokens"] == call.input_tokens
    assert a["gen_ai.usage.output_tokens"] == call.output_tokens
    assert a["agentroute.cost.usd"] == pytest.approx(float(call.cost_usd))
    assert Decimal(a["agentroute.cost.usd_exact"]) == call.cost_usd
    assert a[A.TIER] == "small" and a[A.CALL_ATTEMPT] == 1 and a[A.CALL_FALLBACK] is False
    (step,) = capture.named("invoke_agent ")
    assert step.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert step.attributes["gen_ai.agent.name"] == "triage"
    assert step.attributes[A.GRAPH_NODE] == "triage"
    (task,) = capture.named("invoke_workflow ")
    t = task.attributes
    assert t["gen_ai.operation.name"] == "invoke_workflow" and t["gen_ai.workflow.name"] == "support"
    assert t[A.TASK_ID] == "task-1" and t[A.POLICY_NAME] == "rules" and t[A.POLICY_VERSION] == "3"
    assert t[A.BUDGET_LIMIT + "usd_exact"] == "0.01" and t[A.BUDGET_LIMIT + "tokens"] == 5000
    assert t[A.BUDGET_SPENT + "usd_exact"] == str(run.result.spent.usd)
    assert t[A.BUDGET_SPENT + "tokens"] == run.result.spent.tokens
    assert t[A.TASK_STATUS] == "completed" and t[A.TASK_TRUNCATED] is False and t[A.TASK_REASON] == "completed"
    assert json.loads(t[A.TASK_FEATURES]) == {"priority": 2, "vip": True}  # numbers only: text is content


def test_retries_and_fallbacks_each_get_a_span_with_error_type(capture):
    emit_run(capture.hooks, n_steps=1, fail_first_call=True)
    chats = sorted(capture.named("chat "), key=lambda s: s.start_time)
    assert [c.name for c in chats] == ["chat openai/small", "chat openai/large"]
    failed, ok = chats
    assert failed.attributes["error.type"] == "AuthenticationError"
    assert failed.status.status_code is StatusCode.ERROR
    assert ok.attributes[A.CALL_FALLBACK] is True and "error.type" not in ok.attributes
    assert ok.status.status_code is StatusCode.UNSET


def test_decision_span_carries_the_whole_choice(capture):
    run = emit_run(capture.hooks, n_steps=1)
    model = next(s for s in capture.named("route model"))
    a = model.attributes
    d = run.decisions[0]
    assert list(a[A.ROUTE_CANDIDATES]) == ["small", "large"]
    assert list(a[A.ROUTE_PROBABILITIES]) == [0.75, 0.25]
    assert json.loads(a[A.ROUTE_SCORES]) == {"small": 0.9}
    details = json.loads(a[A.ROUTE_CANDIDATE_DETAILS])
    assert details[1]["cost_estimate"] == "0.005125" and details[0]["input_price"] == "1.5E-7"
    assert list(a[A.ROUTE_MASKED]) == ["xl"] and a[A.ROUTE_MASKED_REASONS][0].startswith("budget:usd")
    assert a[A.ROUTE_CHOSEN] == d.chosen and a[A.ROUTE_REASON] == d.reason
    assert a[A.ROUTE_PROPENSITY] == pytest.approx(d.propensity)
    assert a[A.ROUTE_EXPLORED] is False
    assert a[A.POLICY_NAME] == "rules" and a[A.POLICY_VERSION] == "3" and a[A.POLICY_WEIGHTS_HASH] == "abc123"
    assert json.loads(a[A.BUDGET_BEFORE])["usd"] == "0.01"
    assert json.loads(a[A.BUDGET_RESERVATION])["tokens"] == 530
    assert json.loads(a[A.BUDGET_AFTER])["tokens"] == 5000
    assert json.loads(a[A.ROUTE_EVIDENCE]) == {"line": 3, "rule": "short-question"}  # weights_hash moved out
    assert Decimal(a[A.COST_USD_EXACT]) == d.cost_usd and a[A.ROUTE_QUALITY] == 0.8


def test_ledger_moves_are_events_on_the_open_step_or_the_task(capture):
    run = emit_run(capture.hooks, n_steps=2)
    (task,) = capture.named("invoke_workflow ")
    steps = sorted(capture.named("invoke_agent "), key=lambda s: s.start_time)
    on_task = [e for e in task.events if e.name == A.LEDGER_EVENT]
    on_steps = [[e for e in s.events if e.name == A.LEDGER_EVENT] for s in steps]
    # each step's reservation is made before it starts (between steps): it lands on the task span
    assert [e.attributes[A.LEDGER_WHAT] for e in on_task] == ["step:triage", "step:expert"]
    assert [e.attributes[A.LEDGER_OP] for e in on_steps[0]] == ["reserve", "commit", "commit"]
    assert sum(len(x) for x in on_steps) + len(on_task) == len(run.ledger)
    assert [e.timestamp for e in on_task] == [
        x.at_ns for x in run.ledger if x.what.startswith("step:") and x.op == "reserve"
    ]
    commit = on_steps[0][1].attributes
    assert commit[A.LEDGER_AMOUNT + "usd_exact"] == "0.0001234" and commit[A.LEDGER_AMOUNT + "tokens"] == 58


def test_content_is_off_by_default_and_opt_in(capture, monkeypatch):
    emit_run(capture.hooks, n_steps=1, messages=True)
    for s in capture.spans():
        assert "gen_ai.input.messages" not in s.attributes and A.TASK_INPUT not in s.attributes
        assert "invoice" not in json.dumps(dict(s.attributes))
    on = Capture(capture_content=True)
    emit_run(on.hooks, n_steps=1, messages=True)
    (chat,) = on.named("chat ")
    msgs = json.loads(chat.attributes["gen_ai.input.messages"])
    assert msgs == [{"role": "user", "parts": [{"type": "text", "content": "why is my invoice wrong?"}]}]
    out = json.loads(chat.attributes["gen_ai.output.messages"])
    assert out[0]["role"] == "assistant" and out[0]["parts"][0]["content"] == "Because of a proration."
    (task,) = on.named("invoke_workflow ")
    assert json.loads(task.attributes[A.TASK_INPUT])["question"] == "why is my invoice wrong?"
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    env = Capture(capture_content=None)
    assert env.hooks.capture_content is True
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    assert Capture(capture_content=None).hooks.capture_content is False


def test_a_task_that_fails_inside_a_step_closes_everything(capture):
    from agentroute.budget import Budget, Spend
    from agentroute.errors import AgentError
    from agentroute.records import RunResult, TaskStart

    h = capture.hooks
    h.on_task_start(TaskStart("t-err", "g", "p", "1", Budget(), None, {}, 10))
    h.on_step_start(StepStart("t-err", 0, "a", 20))
    err = AgentError("agent 'a' raised ValueError: boom", agent="a")
    h.on_task_end(
        RunResult("t-err", {}, Spend(), Budget(), True, "error:AgentError", error=err, started_ns=10, ended_ns=50)
    )
    (task,) = capture.named("invoke_workflow")
    (step,) = capture.named("invoke_agent")
    assert step.end_time == 50 and step.status.status_code is StatusCode.ERROR
    assert task.status.status_code is StatusCode.ERROR and task.attributes["error.type"] == "AgentError"
    assert task.attributes[A.TASK_STATUS] == "error" and "boom" in task.attributes[A.ERROR_MESSAGE]
    assert h._builder._tasks == {}


def test_records_without_a_task_start_still_make_spans(capture):
    from tel_records import now

    from agentroute.records import StepEnd

    capture.hooks.on_step_end(StepEnd("orphan", 0, "a", now(), now(), None, 0, None))
    (step,) = capture.named("invoke_agent")
    assert step.attributes[A.TASK_ID] == "orphan" and A.COST_USD not in step.attributes  # unknown cost: unset


def test_concurrent_tasks_do_not_mix(capture):
    import threading

    threads = [threading.Thread(target=emit_run, args=(capture.hooks,), kwargs={"task_id": f"t{i}"}) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = capture.spans()
    roots = {s.attributes[A.TASK_ID]: s.context.trace_id for s in spans if s.name.startswith("invoke_workflow")}
    assert len(roots) == 8
    for s in spans:
        assert s.context.trace_id == roots[s.attributes[A.TASK_ID]]


def test_task_span_is_a_root_linked_to_the_callers_span(capture):
    from opentelemetry.sdk.trace import TracerProvider

    outer = TracerProvider().get_tracer("caller")
    with outer.start_as_current_span("http request") as caller:
        emit_run(capture.hooks, n_steps=1)
    (task,) = capture.named("invoke_workflow")
    assert task.parent is None
    assert [link.context.span_id for link in task.links] == [caller.get_span_context().span_id]
