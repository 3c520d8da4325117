"""configure_tracing: which exporters the arguments and the standard OTEL_* variables select."""

from __future__ import annotations

import json

import pytest
from tel_records import emit_run

from agentroute._telemetry_config import exporter_names, otlp_exporter
from agentroute.errors import ConfigError
from agentroute.telemetry import OTelHooks, configure_tracing


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(var, raising=False)


def names(exporters=None, store_url=None, otlp=None, console=False):
    return exporter_names(exporters, store_url=store_url, otlp=otlp, console=console)


def test_defaults_are_the_store_plus_otlp_when_an_endpoint_is_set(monkeypatch):
    assert names() == ["agentroute"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert names() == ["agentroute", "otlp"]


def test_otel_traces_exporter_decides_and_arguments_add(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    assert names() == ["otlp", "console"]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert names() == []
    assert names(store_url="sqlite:///x.db") == ["agentroute"]
    assert names(console=True, otlp=True) == ["otlp", "console"]
    assert names(exporters="agentroute,otlp", otlp=False) == ["agentroute"]


def test_an_unknown_exporter_is_a_config_error(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ConfigError, match=r"unknown trace exporter 'zipkin'.*otlp"):
        configure_tracing()


def test_protocols_pick_the_matching_otlp_exporter(monkeypatch):
    http = otlp_exporter("http://127.0.0.1:4318")
    assert type(http).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    assert http._endpoint == "http://127.0.0.1:4318/v1/traces"  # a base URL gets the signal path
    assert otlp_exporter("http://h:4318/custom/path")._endpoint == "http://h:4318/custom/path"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    grpc = otlp_exporter("http://127.0.0.1:4317")
    assert type(grpc).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="unsupported OTLP protocol 'http/json'"):
        otlp_exporter()


def test_console_prints_spans(capsys):
    tracing = configure_tracing(exporters="console")
    emit_run(tracing.hooks[0], n_steps=1)
    tracing.flush()
    tracing.shutdown()
    out = capsys.readouterr().out
    assert '"name": "invoke_workflow support"' in out and '"name": "route model"' in out


def test_sdk_disabled_gives_no_hooks(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert configure_tracing(store_url="sqlite:///never.db").hooks == []


def test_the_audit_trail_ignores_an_environment_sampler(monkeypatch):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    mem = InMemorySpanExporter()
    tracing = configure_tracing(exporters="none", span_exporters=[mem])
    emit_run(tracing.hooks[0], n_steps=1)
    tracing.flush()
    assert len(mem.get_finished_spans()) == 5  # task, step, chat, route model, route agent
    tracing.shutdown()


def test_each_configuration_is_private(tmp_path):
    from opentelemetry import trace

    a = configure_tracing(exporters="none")
    b = configure_tracing(exporters="none")
    assert a.provider is not b.provider and trace.get_tracer_provider() not in (a.provider, b.provider)
    assert isinstance(a.hooks[0], OTelHooks)
    provider, hooks = a  # unpacks as a pair
    assert provider is a.provider and hooks is a.hooks
    a.shutdown()
    b.shutdown()


def test_hooks_never_raise_into_a_task_on_odd_records(capture):
    from agentroute.records import HookList

    hooks = HookList([capture.hooks])
    hooks.on_task_end(None)  # type: ignore[arg-type]  # a broken record: logged by HookList, never raised
    emit_run(hooks, n_steps=1)
    assert json.dumps([s.name for s in capture.spans()])
