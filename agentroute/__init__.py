"""agentroute: budget-aware routing in graphs of LLM agents.

Define agent graphs (on LangGraph) in which a router policy chooses, at every step, which agent runs next, which model
tier it calls (through LiteLLM) and which memory tier it reads with; give every task a hard budget that is reserved
before each step and never exceeded; audit every decision.

>>> import agentroute as ar
>>> graph = ar.AgentGraph("support")
"""

import os as _os

# LiteLLM fetches its price map from the internet at import unless told otherwise; agentroute never wants that.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentroute import policies, providers
from agentroute._loop import Reply
from agentroute._stream import StreamEvent
from agentroute._wrap import acomplete, complete, wrap
from agentroute.budget import Budget, BudgetStatus, Ledger, SharedBudget, Spend, Violation
from agentroute.context import Choice, StepContext
from agentroute.errors import (
    AgentError,
    AgentRouteError,
    BudgetExhausted,
    BudgetViolation,
    ConfigError,
    DataError,
    LedgerError,
    PolicyError,
    ProviderError,
    RunError,
    SchemaMismatch,
    StoreError,
    Unaffordable,
)
from agentroute.graph import END, AgentGraph
from agentroute.llm import ModelTier
from agentroute.records import CallRecord, RunHooks, RunResult
from agentroute.routing import (
    Candidate,
    Decision,
    DecisionRecord,
    Feedback,
    Masked,
    Observation,
    RouterPolicy,
    TaskInfo,
)
from agentroute.runtime import App

__version__ = "0.1.0"

# Heavier parts load on first use, so `import agentroute` and `agentroute --help` stay fast.
_LAZY = {
    "configure_tracing": "agentroute.telemetry",
    "Tracing": "agentroute.telemetry",
    "OTelHooks": "agentroute.telemetry",
    "RoutingTable": "agentroute.data",
    "load_builtin": "agentroute.data",
    "HashingFeaturizer": "agentroute.features",
    "RedisLedger": "agentroute.ledgers",
    "Memory": "agentroute.memory",
    "SqlLedger": "agentroute.ledgers",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentroute' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "END",
    "AgentError",
    "AgentGraph",
    "AgentRouteError",
    "App",
    "Budget",
    "BudgetExhausted",
    "BudgetStatus",
    "BudgetViolation",
    "CallRecord",
    "Candidate",
    "Choice",
    "ConfigError",
    "DataError",
    "Decision",
    "DecisionRecord",
    "Feedback",
    "HashingFeaturizer",
    "Ledger",
    "LedgerError",
    "Masked",
    "Memory",
    "ModelTier",
    "OTelHooks",
    "Observation",
    "PolicyError",
    "ProviderError",
    "RedisLedger",
    "Reply",
    "RouterPolicy",
    "RoutingTable",
    "RunError",
    "RunHooks",
    "RunResult",
    "SchemaMismatch",
    "SharedBudget",
    "Spend",
    "SqlLedger",
    "StepContext",
    "StoreError",
    "StreamEvent",
    "TaskInfo",
    "Tracing",
    "Unaffordable",
    "Violation",
    "__version__",
    "acomplete",
    "complete",
    "configure_tracing",
    "load_builtin",
    "policies",
    "providers",
    "wrap",
]
