"""The routing kernel: what a policy sees, what it returns, the decision record, and the policy contract.

Every routing point (agent choice, model tier, memory tier, user routing points, evaluation and training) speaks
this vocabulary. The package must stay free of runtime, LangGraph and LiteLLM imports: policies depend on it, never
the reverse.
"""

from agentroute.routing._types import (
    KINDS,
    Candidate,
    Decision,
    Feedback,
    Kind,
    Masked,
    Observation,
    TaskInfo,
    one_hot,
)
from agentroute.routing.policy import CAPABILITIES, GraphSpec, PolicyBase, RouterPolicy, TaskOutcome, implements
from agentroute.routing.record import DecisionRecord

__all__ = [
    "CAPABILITIES",
    "KINDS",
    "Candidate",
    "Decision",
    "DecisionRecord",
    "Feedback",
    "GraphSpec",
    "Kind",
    "Masked",
    "Observation",
    "PolicyBase",
    "RouterPolicy",
    "TaskInfo",
    "TaskOutcome",
    "implements",
    "one_hot",
]
