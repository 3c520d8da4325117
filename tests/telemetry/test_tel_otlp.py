"""OTLP export to real receivers on 127.0.0.1: OTLP/HTTP (protobuf) and OTLP/gRPC, decoded on arrival."""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from tel_receivers import GrpcReceiver, HttpReceiver
from tel_records import emit_run

from agentroute import _telemetry_attrs as A
from agentroute.telemetry import SCHEMA_URL, configure_tracing


def _check_tree(rx) -> None:
    (task,) = rx.named("invoke_workflow support")
    steps = rx.named("invoke_agent ")
    chats = rx.named("chat ")
    routes = rx.named("route ")
    assert len(steps) == 2 and len(chats) == 4 and len(routes) == 4
    assert task["parent"] is None and task["kind"] == trace_pb2.Span.SPAN_KIND_INTERNAL
    assert {s["parent"] for s in steps} == {task["span_id"]}
    step_ids = {s["span_id"] for s in steps}
    assert all(c["parent"] in step_ids and c["kind"] == trace_pb2.Span.SPAN_KIND_CLIENT for c in chats)
    assert {s["trace_id"] for s in rx.spans} == {task["trace_id"]}
    failed = next(c for c in chats if "error.type" in c["attributes"])
    assert failed["attributes"]["error.type"] == "AuthenticationError"
    assert failed["status"] == trace_pb2.Status.STATUS_CODE_ERROR
    ok = next(c for c in chats if c["attributes"]["agentroute.call.fallback"])
    assert ok["attributes"]["gen_ai.usage.output_tokens"] == 40
    assert ok["attributes"]["gen_ai.provider.name"] == "openai"
    assert ok["attributes"]["agentroute.cost.usd_exact"] == "0.0001234"
    model = next(r for r in routes if r["name"] == "route model")
    assert model["attributes"][A.ROUTE_CANDIDATES] == ["small", "large"]
    assert model["attributes"][A.ROUTE_PROBABILITIES] == [0.75, 0.25]
    assert model["attributes"][A.POLICY_WEIGHTS_HASH] == "abc123"
    assert task["attributes"]["gen_ai.workflow.name"] == "support"
    assert task["attributes"][A.TASK_STATUS] == "completed"
    ledger = [e for e in task["events"] if e[0] == A.LEDGER_EVENT]
    assert [e[1][A.LEDGER_WHAT] for e in ledger] == ["step:triage", "step:expert"]
    assert rx.resources[0]["service.name"] == "agentroute"
    assert ("agentroute", SCHEMA_URL) in rx.scopes


def test_spans_arrive_over_otlp_http():
    with HttpReceiver() as rx:
        tracing = configure_tracing(exporters="none", otlp=rx.endpoint)
        emit_run(tracing.hooks[0], n_steps=2, fail_first_call=True)
        assert tracing.flush()
        tracing.shutdown()
    assert rx.content_types and all(ct == "application/x-protobuf" for ct in rx.content_types)
    _check_tree(rx)


def test_standard_environment_variables_choose_otlp_http(monkeypatch):
    with HttpReceiver() as rx:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "support-bot")
        tracing = configure_tracing()
        assert tracing.exporters == ("otlp",)
        emit_run(tracing.hooks[0], n_steps=2, fail_first_call=True)
        tracing.flush()
        tracing.shutdown()
    assert rx.resources[0]["service.name"] == "support-bot"
    assert set(rx.encodings) == {"gzip"}
    assert len(rx.named("invoke_agent ")) == 2


def test_spans_arrive_over_otlp_grpc(monkeypatch):
    pytest.importorskip("grpc")
    with GrpcReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
        tracing = configure_tracing(exporters="otlp")
        emit_run(tracing.hooks[0], n_steps=2, fail_first_call=True)
        assert tracing.flush()
        tracing.shutdown()
    _check_tree(rx)


def test_an_unreachable_collector_never_blocks_the_task_and_warns_once(monkeypatch, caplog, dead_port):
    import logging
    import threading

    from agentroute._telemetry_otlp_guard import GuardedExporter

    port = dead_port  # a port nobody listens on
    exported_on: list[threading.Thread] = []
    export = GuardedExporter.export

    def spy(self, spans):
        exported_on.append(threading.current_thread())
        return export(self, spans)

    monkeypatch.setattr(GuardedExporter, "export", spy)
    tracing = configure_tracing(exporters="none", otlp=f"http://127.0.0.1:{port}", schedule_delay_millis=1)
    with caplog.at_level(logging.DEBUG):
        for i in range(20):
            emit_run(tracing.hooks[0], task_id=f"t{i}", n_steps=2)
        during_tasks = list(exported_on)
        tracing.flush()
        tracing.provider.shutdown()
    # while tasks run, export happens on the processor's thread, never on the task's (speed is measured by
    # benchmarks/tracing_overhead.py, not asserted here); the flush then sends what is left
    assert threading.current_thread() not in during_tasks
    assert exported_on
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "no OTLP collector" in lines[0], lines
