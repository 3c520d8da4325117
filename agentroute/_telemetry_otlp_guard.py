"""A guard around an OTLP span exporter, so a collector that is down costs one warning line and no time.

The OpenTelemetry exporters retry a refused connection with backoff for up to their timeout (10 s) on every batch,
logging a "Transient error" line per attempt; a short run then ends by waiting out those retries on shutdown. The
guard checks that something listens at the collector's address (one TCP connect, half a second at most) before the
first batch and after any failed one. When nothing does, it warns once, drops batches without trying for
``retry_after`` seconds, and then checks again. A collector that is up gets every batch, with the exporter's own
retries. The guard never raises and never touches the other exporters (the SQL store keeps every span).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("agentroute.telemetry")

_HTTP_DEFAULT = "http://localhost:4318"
_GRPC_DEFAULT = "http://localhost:4317"


def collector_address(endpoint: str | None, protocol: str) -> tuple[str, int, str]:
    """``(host, port, shown)`` of the collector the exporter will use (the ``OTEL_*`` variables when no endpoint)."""
    grpc = protocol == "grpc"
    raw = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or \
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or (_GRPC_DEFAULT if grpc else _HTTP_DEFAULT)
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    default_port = 4317 if grpc else (443 if parts.scheme == "https" else 80)
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return parts.hostname or "localhost", port, raw


class GuardedExporter(SpanExporter):
    """Forward to ``inner`` while a collector listens at ``host:port``; otherwise drop batches quietly."""

    def __init__(self, inner: SpanExporter, host: str, port: int, shown: str, *, retry_after: float = 30.0,
                 connect_timeout: float = 0.5) -> None:
        self.inner, self.host, self.port, self.shown = inner, host, port, shown
        self.retry_after, self.connect_timeout = retry_after, connect_timeout
        self._checked = False  # True while the last check or export succeeded
        self._down_until = 0.0
        self._warned = False
        self._lock = threading.Lock()
        self.dropped = 0

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.connect_timeout):
                return True
        except OSError:
            return False

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Export ``spans`` through the inner exporter, or drop them while the collector is down."""
        with self._lock:
            now = time.monotonic()
            if now < self._down_until:
                self.dropped += len(spans)
                return SpanExportResult.FAILURE
            if not self._checked:
                if not self._listening():
                    self._down_until = now + self.retry_after
                    self.dropped += len(spans)
                    if not self._warned:
                        self._warned = True
                        log.warning("no OTLP collector answers at %s: spans are not sent there (the other exporters "
                                    "still get them); checking again every %gs", self.shown, self.retry_after)
                    return SpanExportResult.FAILURE
                self._checked = True
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self._checked = False  # check the address before the next batch instead of retrying blindly
        return result

    def shutdown(self) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return bool(self.inner.force_flush(timeout_millis))


def guard(inner: SpanExporter, endpoint: str | None, protocol: str | None) -> GuardedExporter:
    """Wrap an OTLP exporter built for ``endpoint`` / ``protocol`` (None: from the ``OTEL_*`` variables)."""
    proto = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
             or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    host, port, shown = collector_address(endpoint, proto)
    return GuardedExporter(inner, host, port, shown)


__all__ = ["GuardedExporter", "collector_address", "guard"]
