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

# -- GenAI semantic conventions (v1.41.0)
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"

# -- agentroute.*
# -- the decision's keys live with the decision record (routing.record); the same names here
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
STEP_INDEX = _rec.STEP_INDEX
TASK_ID = _rec.TASK_ID
USAGE_TOKENS = _rec.USAGE_TOKENS

TASK_STATUS = "agentroute.task.status"
TASK_TRUNCATED = "agentroute.task.truncated"
TASK_REASON = "agentroute.task.reason"
TASK_QUALITY = "agentroute.task.quality"
TASK_STEPS = "agentroute.task.steps"
TASK_DECISIONS = "agentroute.task.decisions"
TASK_FEATURES = "agentroute.task.features"
TASK_INPUT = "agentroute.task.input"
"""The task's input state as JSON: content, so only when capture is on."""
GRAPH_NAME = "agentroute.graph.name"
BUDGET_SHARED = "agentroute.budget.shared"
BUDGET_LIMIT = "agentroute.budget.limit."  # + usd | tokens | steps | seconds
BUDGET_SPENT = "agentroute.budget.spent."  # + usd | tokens | steps | seconds
ERROR_MESSAGE = "agentroute.error.message"

TIER = "agentroute.tier"
CALL_ATTEMPT = "agentroute.call.attempt"
CALL_FALLBACK = "agentroute.call.fallback"
CALL_TIMEOUT = "agentroute.call.timeout"


LEDGER_EVENT = "agentroute.ledger"
LEDGER_OP = "agentroute.ledger.op"
LEDGER_WHAT = "agentroute.ledger.what"
LEDGER_AMOUNT = "agentroute.ledger.amount."  # + usd | tokens | steps | seconds

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
