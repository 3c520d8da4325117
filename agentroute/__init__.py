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

from agentroute import policies, providers  # noqa: E402
from agentroute._loop import Reply  # noqa: E402
from agentroute.budget import Budget, BudgetStatus, Ledger, SharedBudget, Spend  # noqa: E402
from agentroute.context import Choice, StepContext  # noqa: E402
from agentroute.errors import (  # noqa: E402
    AgentError,
    AgentRouteError,
    BudgetExhausted,
    ConfigError,
    DataError,
    PolicyError,
    ProviderError,
    RunError,
)
from agentroute.graph import END, AgentGraph  # noqa: E402
from agentroute.llm import ModelTier  # noqa: E402
from agentroute.records import CallRecord, RunHooks, RunResult  # noqa: E402
from agentroute.routing import (  # noqa: E402
    Candidate,
    Decision,
    DecisionRecord,
    Feedback,
    Masked,
    Observation,
    RouterPolicy,
    TaskInfo,
)
from agentroute.runtime import App  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "END",
    "AgentError",
    "AgentGraph",
    "AgentRouteError",
    "App",
    "Budget",
    "BudgetExhausted",
    "BudgetStatus",
    "CallRecord",
    "Candidate",
    "Choice",
    "ConfigError",
    "DataError",
    "Decision",
    "DecisionRecord",
    "Feedback",
    "Ledger",
    "Masked",
    "ModelTier",
    "Observation",
    "PolicyError",
    "ProviderError",
    "Reply",
    "RouterPolicy",
    "RunError",
    "RunHooks",
    "RunResult",
    "SharedBudget",
    "Spend",
    "StepContext",
    "TaskInfo",
    "__version__",
    "policies",
    "providers",
]
