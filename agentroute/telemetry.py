"""OpenTelemetry spans for every task, step, model call and routing decision: the public face of tracing.

:class:`OTelHooks` (in :mod:`agentroute._telemetry_hooks`) turns run records into spans; :func:`configure_tracing`
(in :mod:`agentroute._telemetry_config`) builds a private tracer provider with exporters and hooks bound to it,
building the spans on a background thread so a task pays almost nothing for its trace. Names follow the GenAI
semantic conventions (see :data:`SEMCONV_VERSION`); routing, budgets and cost live under ``agentroute.*``
(:mod:`agentroute._telemetry_attrs` lists every key; a decision's attributes are
:meth:`~agentroute.routing.DecisionRecord.to_attributes`). Message content is recorded only when
``capture_content`` is on (argument, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), and every
value registered with :func:`register_secret` (and every credential-shaped string) is scrubbed from spans, rows
and stored error texts.
"""

from __future__ import annotations

from agentroute._telemetry_attrs import SCHEMA_URL, SEMCONV_VERSION
from agentroute._telemetry_config import Tracing, configure_tracing
from agentroute._telemetry_hooks import OTelHooks, decision_attributes, tracing_disabled
from agentroute._telemetry_redact import register_secret, unregister_secret

__all__ = [
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "OTelHooks",
    "Tracing",
    "configure_tracing",
    "decision_attributes",
    "register_secret",
    "tracing_disabled",
    "unregister_secret",
]
