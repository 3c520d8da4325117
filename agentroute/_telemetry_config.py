"""A tracer provider with exporters, built from arguments and the standard ``OTEL_*`` environment variables.

:func:`configure_tracing` returns a :class:`Tracing`: a *private* ``TracerProvider`` (never the global one, so
two configurations in one process, and tests, stay apart) and the hooks to hand to
``graph.compile(hooks=...)``. Every exporter sits behind its own ``BatchSpanProcessor``: a step only appends
to a queue, export happens on a background thread, and a full queue drops spans (with a warning) rather than
block a task.

Exporters, by name (``OTEL_TRACES_EXPORTER`` is a comma-separated list of them):

* ``agentroute`` -- the SQL store (:mod:`agentroute.store`), at ``store_url`` or ``AGENTROUTE_DATABASE_URL``
  or ``./agentroute.db``;
* ``otlp`` -- OTLP over ``http/protobuf`` (default) or ``grpc``, chosen by
  ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``; endpoint, headers, timeout,
  compression and certificates come from the ``OTEL_EXPORTER_OTLP_*`` variables, read by the OpenTelemetry
  exporters themselves;
* ``console`` -- one JSON document per span on stdout;
* ``none`` -- nothing (the defaults are off; explicit arguments still apply).

When ``OTEL_TRACES_EXPORTER`` is unset the default is the SQL store, plus OTLP when an OTLP endpoint variable
is set. This module imports the OpenTelemetry SDK; the OTLP exporters and SQLAlchemy are imported only when
asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentroute._telemetry_hooks import OTelHooks, capture_content_from_env, tracing_disabled
from agentroute.errors import ConfigError
from agentroute.records import FlushReport

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from agentroute.records import RunHooks

KNOWN_EXPORTERS = ("agentroute", "otlp", "console", "none")
_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass(frozen=True)
class Tracing:
    """A configured tracer provider and the hooks bound to it; unpacks as ``provider, hooks = tracing``."""

    provider: TracerProvider
    hooks: list[RunHooks]
    exporters: tuple[str, ...] = ()
    """Names of the exporters in use, for messages (``agentroute:sqlite:///...``, ``otlp``, ``console``)."""
    processors: tuple[Any, ...] = ()
    """The span processors configured here (those with a ``report()`` feed :meth:`flush`'s report)."""

    def __iter__(self) -> Iterator[Any]:
        return iter((self.provider, self.hooks))

    def flush(self, timeout_millis: int = 30_000) -> FlushReport:
        """Build the queued spans and export them; the report is true when nothing is pending or was dropped.

        With the SQL store down, rows wait in its spool while the database stays unreachable (``pending_rows``);
        they are written by a later flush, at shutdown, or by the next exporter of the same database.
        """
        for h in self.hooks:
            if isinstance(h, OTelHooks):
                h.drain(timeout_millis / 1000)
        report = FlushReport(finished=bool(self.provider.force_flush(timeout_millis)))
        for p in self.processors:
            if hasattr(p, "report"):
                report = report + p.report()
        return report

    def shutdown(self) -> None:
        """Flush and stop the export threads (the provider also does this at interpreter exit)."""
        for h in self.hooks:
            if isinstance(h, OTelHooks):
                h.close()
        self.provider.shutdown()


def exporter_names(
    exporters: str | Sequence[str] | None, *, store_url: str | None, otlp: bool | str | None, console: bool
) -> list[str]:
    """Which exporters to build: the explicit list, else ``OTEL_TRACES_EXPORTER``, else the defaults."""
    if isinstance(exporters, str):
        exporters = exporters.split(",")
    env = os.environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        names = [n.strip().lower() for n in exporters if n.strip()]
    elif env is not None and env.strip():
        names = [n.strip().lower() for n in env.split(",") if n.strip()]
    else:
        names = ["agentroute"]
        if any(os.environ.get(v) for v in _OTLP_ENDPOINT_VARS):
            names.append("otlp")
    for n in names:
        if n not in KNOWN_EXPORTERS:
            raise ConfigError(
                f"unknown trace exporter {n!r}",
                name=n,
                hint=f"OTEL_TRACES_EXPORTER takes a comma-separated list of {', '.join(KNOWN_EXPORTERS)}",
            )
    names = [n for n in names if n != "none"]
    if store_url is not None and "agentroute" not in names:
        names.append("agentroute")
    if otlp and "otlp" not in names:
        names.append("otlp")
    if otlp is False and "otlp" in names:
        names.remove("otlp")
    if console and "console" not in names:
        names.append("console")
    return names


def otlp_exporter(endpoint: str | None = None, protocol: str | None = None) -> SpanExporter:
    """An OTLP span exporter; ``None`` arguments fall back to the ``OTEL_EXPORTER_OTLP_*`` variables."""
    proto = (
        protocol
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip().lower()
    try:
        if proto == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            if endpoint is None:
                return GrpcExporter()
            return GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
        if proto in ("http/protobuf", "http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            if endpoint is None:
                return HttpExporter()
            if endpoint.rstrip("/").count("/") <= 2:  # a base URL: add the signal path, as the env var does
                endpoint = endpoint.rstrip("/") + "/v1/traces"
            return HttpExporter(endpoint=endpoint)
    except ImportError as e:
        raise ConfigError(
            f"OTLP export over {proto} needs {e.name}", name="otlp", hint="pip install 'agentroute[otlp]'"
        ) from None
    raise ConfigError(
        f"unsupported OTLP protocol {proto!r}",
        name="OTEL_EXPORTER_OTLP_PROTOCOL",
        hint="use http/protobuf or grpc",
    )


def configure_tracing(
    *,
    exporters: str | Sequence[str] | None = None,
    store_url: str | None = None,
    otlp: bool | str | None = None,
    otlp_protocol: str | None = None,
    console: bool = False,
    capture_content: bool | None = None,
    span_exporters: Iterable[SpanExporter] = (),
    schedule_delay_millis: int | None = None,
    max_queue_size: int | None = None,
) -> Tracing:
    """A private tracer provider with batch exporters, and :class:`~agentroute.telemetry.OTelHooks` for it.

    ``exporters`` overrides ``OTEL_TRACES_EXPORTER``; ``store_url`` adds the SQL store at that URL;
    ``otlp=True`` adds OTLP (a string is its endpoint, e.g. ``"http://127.0.0.1:4318"``); ``console=True``
    prints spans; ``span_exporters`` adds your own (an ``InMemorySpanExporter`` in tests).
    ``capture_content=None`` reads ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``. With
    ``OTEL_SDK_DISABLED=true`` no hooks are returned.

    Example::

        tracing = configure_tracing(store_url="sqlite:///runs.db")
        app = graph.compile(policy=policy, provider=provider, hooks=tracing.hooks)
        ...
        tracing.flush()
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON


    names = exporter_names(exporters, store_url=store_url, otlp=otlp, console=console)
    attrs: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attrs["service.name"] = "agentroute"
    # The audit trail must be complete: always sample (a sampler from the environment would drop decisions).
    provider = TracerProvider(
        sampler=ALWAYS_ON,
        resource=Resource.create(attrs),
        span_limits=SpanLimits(max_events=100_000, max_span_attributes=256, max_event_attributes=64),
    )
    if tracing_disabled():
        return Tracing(provider, [], ())
    # Larger queues than the SDK's 2,048 spans: a burst of tasks must not drop audit records. The variables
    # OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BSP_SCHEDULE_DELAY still win over these defaults.
    batch: dict[str, Any] = {}
    if max_queue_size is not None or not os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE"):
        batch["max_queue_size"] = max_queue_size or 65_536
    if schedule_delay_millis is not None:
        batch["schedule_delay_millis"] = schedule_delay_millis
    used: list[str] = []
    processors: list[SpanProcessor] = []
    for name in names:
        if name == "agentroute":
            from agentroute.store.engine import resolve_url
            from agentroute.store.exporter import SqlSpanExporter, SqlSpanProcessor

            exporter = SqlSpanExporter(store_url)
            opts = dict(batch)
            if not os.environ.get("OTEL_BSP_SCHEDULE_DELAY"):
                opts.setdefault("schedule_delay_millis", 200)  # a finished step is in the store within ~0.2 s
            processors.append(SqlSpanProcessor(exporter, **opts))
            used.append(f"agentroute:{resolve_url(store_url, hide_password=True)}")
        elif name == "otlp":
            from agentroute._telemetry_otlp_guard import guard

            endpoint = otlp if isinstance(otlp, str) else None
            # A collector that is down costs one warning line, not retries on every batch and a slow shutdown.
            guarded = guard(otlp_exporter(endpoint, otlp_protocol), endpoint, otlp_protocol)
            processors.append(BatchSpanProcessor(guarded, **batch))
            used.append("otlp")
        elif name == "console":
            # Bind stdout now: the exporter's default is the stdout of the moment OpenTelemetry was imported.
            processors.append(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stdout), **batch))
            used.append("console")
    for exp in span_exporters:
        processors.append(BatchSpanProcessor(exp, **batch))
        used.append(type(exp).__name__)
    for p in processors:
        provider.add_span_processor(p)
    hooks = OTelHooks(provider, capture_content=capture_content, background=True)
    return Tracing(provider, [hooks], tuple(used), tuple(processors))


__all__ = [
    "KNOWN_EXPORTERS",
    "OTelHooks",
    "Tracing",
    "capture_content_from_env",
    "configure_tracing",
    "exporter_names",
    "otlp_exporter",
]
