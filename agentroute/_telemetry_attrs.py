"""Span names and attribute keys of agentroute's traces, and the encoders that turn records into attributes.

Where the OpenTelemetry GenAI semantic conventions define a name we use it (pinned to
:data:`SEMCONV_VERSION`); routing, budgets and cost live under ``agentroute.*``. The SQL store reads spans
back through the same constants, so a key renamed here is renamed for the spans and the rows together.
Structured values (candidate details, budget snapshots, evidence) are JSON strings, because span attributes
may only hold scalars and flat lists.

This module must stay import-light: no OpenTelemetry, no SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from agentroute import records as _recs
from agentroute._telemetry_redact import redact_text
from agentroute.routing import record as _rec

SEMCONV_VERSION = "1.41.0"
"""OpenTelemetry semantic conventions release whose GenAI span conventions (status: Development) we follow."""
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

# -- span names (``{operation} {subject}``, as the GenAI conventions name them)
OP_WORKFLOW = "invoke_workflow"
OP_AGENT = "invoke_agent"
OP_CHAT = "chat"
OP_ROUTE = "route"  # no convention exists for a routing decision: our own operation name

# -- every key of a span: defined with the records they spell (agentroute.records, agentroute.routing.record)
GEN_AI_OPERATION_NAME = _recs.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = _recs.GEN_AI_PROVIDER_NAME
GEN_AI_WORKFLOW_NAME = _recs.GEN_AI_WORKFLOW_NAME
GEN_AI_AGENT_NAME = _recs.GEN_AI_AGENT_NAME
GEN_AI_REQUEST_MODEL = _recs.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_MAX_TOKENS = _recs.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_RESPONSE_MODEL = _recs.GEN_AI_RESPONSE_MODEL
GEN_AI_USAGE_INPUT_TOKENS = _recs.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = _recs.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_INPUT_MESSAGES = _recs.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES = _recs.GEN_AI_OUTPUT_MESSAGES
ERROR_TYPE = _recs.ERROR_TYPE
TASK_STATUS = _recs.TASK_STATUS
TASK_TRUNCATED = _recs.TASK_TRUNCATED
TASK_REASON = _recs.TASK_REASON
TASK_VIOLATIONS = _recs.TASK_VIOLATIONS
TASK_QUALITY = _recs.TASK_QUALITY
TASK_STEPS = _recs.TASK_STEPS
TASK_DECISIONS = _recs.TASK_DECISIONS
TASK_FEATURES = _recs.TASK_FEATURES
TASK_INPUT = _recs.TASK_INPUT
GRAPH_NAME = _recs.GRAPH_NAME
BUDGET_SHARED = _recs.BUDGET_SHARED
BUDGET_LIMIT = _recs.BUDGET_LIMIT
BUDGET_SPENT = _recs.BUDGET_SPENT
ERROR_MESSAGE = _recs.ERROR_MESSAGE
TIER = _recs.TIER
CALL_ATTEMPT = _recs.CALL_ATTEMPT
CALL_FALLBACK = _recs.CALL_FALLBACK
CALL_BILLING = _recs.CALL_BILLING
CALL_TIMEOUT = _recs.CALL_TIMEOUT
LEDGER_EVENT = _recs.LEDGER_EVENT
LEDGER_OP = _recs.LEDGER_OP
LEDGER_WHAT = _recs.LEDGER_WHAT
LEDGER_AMOUNT = _recs.LEDGER_AMOUNT
BUDGET_AFTER = _rec.BUDGET_AFTER
BUDGET_BEFORE = _rec.BUDGET_BEFORE
BUDGET_RESERVATION = _rec.BUDGET_RESERVATION
COST_USD = _rec.COST_USD
COST_USD_EXACT = _rec.COST_USD_EXACT
GRAPH_NODE = _rec.GRAPH_NODE
POLICY_NAME = _rec.POLICY_NAME
POLICY_VERSION = _rec.POLICY_VERSION
POLICY_WEIGHTS_HASH = _rec.POLICY_WEIGHTS_HASH
RECORD = _rec.RECORD
ROUTE_CANDIDATE_DETAILS = _rec.ROUTE_CANDIDATE_DETAILS
ROUTE_CANDIDATES = _rec.ROUTE_CANDIDATES
ROUTE_CHOSEN = _rec.ROUTE_CHOSEN
ROUTE_DECIDED_NS = _rec.ROUTE_DECIDED_NS
ROUTE_EVIDENCE = _rec.ROUTE_EVIDENCE
ROUTE_EXPLORED = _rec.ROUTE_EXPLORED
ROUTE_INDEX = _rec.ROUTE_INDEX
ROUTE_KIND = _rec.ROUTE_KIND
ROUTE_MASKED = _rec.ROUTE_MASKED
ROUTE_MASKED_REASONS = _rec.ROUTE_MASKED_REASONS
ROUTE_POINT = _rec.ROUTE_POINT
ROUTE_PROBABILITIES = _rec.ROUTE_PROBABILITIES
ROUTE_PROPENSITY = _rec.ROUTE_PROPENSITY
ROUTE_QUALITY = _rec.ROUTE_QUALITY
ROUTE_REASON = _rec.ROUTE_REASON
ROUTE_SCORES = _rec.ROUTE_SCORES
ROUTE_SHADOW = _rec.ROUTE_SHADOW
STEP_INDEX = _rec.STEP_INDEX
TASK_ID = _rec.TASK_ID
USAGE_TOKENS = _rec.USAGE_TOKENS

DIMENSIONS = ("usd", "tokens", "steps", "seconds")


def to_json(value: Any, *, redact: bool = True) -> str:
    """Compact JSON for an attribute (Decimals as strings); credentials scrubbed unless ``redact=False``.

    Pass ``redact=False`` only for values built from numbers and the graph's own names, or already scrubbed.
    """
    text = _rec.dumps(value)
    return redact_text(text) if redact else text


def money(
    attrs: dict[str, Any], value: Decimal | None, key: str = COST_USD, exact: str = COST_USD_EXACT
) -> None:
    """Set a USD amount twice: a double for dashboards, the exact string for the store (``None``: unset)."""
    if value is None:
        return
    attrs[key] = float(value)
    attrs[exact] = str(value)


def budget_attrs(attrs: dict[str, Any], prefix: str, values: Mapping[str, Any]) -> None:
    """Flatten ``{"usd": "0.05", "tokens": 100, ...}`` into ``prefix + dim`` attributes (``None``: unset)."""
    for dim in DIMENSIONS:
        v = values.get(dim)
        if v is None:
            continue
        if dim == "usd":
            attrs[prefix + "usd"] = float(v)  # float() parses the decimal string directly
            attrs[prefix + "usd_exact"] = str(v)
        elif dim == "seconds":
            attrs[prefix + dim] = float(v)
        else:
            attrs[prefix + dim] = int(v)


def scalar_features(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numeric and boolean entries of ``data``: features that are not message content."""
    if not data:
        return {}
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, bool | int | float) and not isinstance(v, Decimal):
            out[str(k)] = v
        elif isinstance(v, Decimal):
            out[str(k)] = str(v)
    return out


def error_text(message: str | None, limit: int = 500) -> str | None:
    """An error message fit for telemetry: scrubbed of credentials and cut to ``limit`` characters."""
    if not message:
        return None
    text = redact_text(message)
    return text if len(text) <= limit else text[: limit - 1] + "…"
