"""Span names and attribute keys of agentroute's traces, and the encoders that turn records into attributes.

Where the OpenTelemetry GenAI semantic conventions define a name we use it (pinned to
:data:`SEMCONV_VERSION`); routing, budgets and cost live under ``agentroute.*``. The SQL store reads spans
back through the same constants, so a key renamed here is renamed for the spans and the rows together.
Structured values (candidate details, budget snapshots, evidence) are JSON strings, because span attributes
may only hold scalars and flat lists.

This module must stay import-light: no OpenTelemetry, no SQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from agentroute._telemetry_redact import redact_text

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
RECORD = "agentroute.record"
"""Which record a span carries: ``task``, ``step``, ``call`` or ``decision`` (the store dispatches on it)."""
TASK_ID = "agentroute.task.id"
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
GRAPH_NODE = "agentroute.graph.node"
STEP_INDEX = "agentroute.step.index"
POLICY_NAME = "agentroute.policy.name"
POLICY_VERSION = "agentroute.policy.version"
POLICY_WEIGHTS_HASH = "agentroute.policy.weights_hash"
BUDGET_SHARED = "agentroute.budget.shared"
BUDGET_LIMIT = "agentroute.budget.limit."  # + usd | tokens | steps | seconds
BUDGET_SPENT = "agentroute.budget.spent."  # + usd | tokens | steps | seconds
BUDGET_BEFORE = "agentroute.budget.before"
BUDGET_RESERVATION = "agentroute.budget.reservation"
BUDGET_AFTER = "agentroute.budget.after"
COST_USD = "agentroute.cost.usd"
"""USD cost as a double, for dashboards (the GenAI conventions have no cost attribute yet)."""
COST_USD_EXACT = "agentroute.cost.usd_exact"
"""The same cost as an exact decimal string: the store keeps money exact."""
USAGE_TOKENS = "agentroute.usage.tokens"
ERROR_MESSAGE = "agentroute.error.message"

TIER = "agentroute.tier"
CALL_ATTEMPT = "agentroute.call.attempt"
CALL_FALLBACK = "agentroute.call.fallback"
CALL_TIMEOUT = "agentroute.call.timeout"

ROUTE_INDEX = "agentroute.route.index"
ROUTE_KIND = "agentroute.route.kind"
ROUTE_POINT = "agentroute.route.point"
ROUTE_CANDIDATES = "agentroute.route.candidates"
"""Ids of the affordable candidates, cheapest first (string[])."""
ROUTE_PROBABILITIES = "agentroute.route.probabilities"
"""Probability of each candidate, aligned with :data:`ROUTE_CANDIDATES` (double[])."""
ROUTE_SCORES = "agentroute.route.scores"
"""JSON object ``{candidate: score}`` (policies score only some candidates)."""
ROUTE_CANDIDATE_DETAILS = "agentroute.route.candidates.detail"
"""JSON list of candidates with kind, rank, prices, cost and latency estimates and descriptor."""
ROUTE_MASKED = "agentroute.route.masked"
ROUTE_MASKED_REASONS = "agentroute.route.masked.reasons"
ROUTE_CHOSEN = "agentroute.route.chosen"
ROUTE_REASON = "agentroute.route.reason"
ROUTE_PROPENSITY = "agentroute.route.propensity"
ROUTE_EXPLORED = "agentroute.route.explored"
ROUTE_QUALITY = "agentroute.route.quality"
ROUTE_EVIDENCE = "agentroute.route.evidence"

LEDGER_EVENT = "agentroute.ledger"
LEDGER_OP = "agentroute.ledger.op"
LEDGER_WHAT = "agentroute.ledger.what"
LEDGER_AMOUNT = "agentroute.ledger.amount."  # + usd | tokens | steps | seconds

DIMENSIONS = ("usd", "tokens", "steps", "seconds")


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    return repr(o)


def to_json(value: Any, *, redact: bool = True) -> str:
    """Compact JSON for an attribute (Decimals as strings); credentials scrubbed unless ``redact=False``.

    Pass ``redact=False`` only for values built from numbers and the graph's own names, or already scrubbed.
    """
    text = json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False)
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
