"""The routing kernel: the vocabulary, the decision record, the policy contract, and the one routing point.

Every driver goes through :class:`TaskRouter` (see :mod:`agentroute.routing.point`).

Every routing point (agent choice, model tier, memory tier, user routing points, evaluation and training) speaks
this vocabulary. The package must stay free of runtime, LangGraph and LiteLLM imports: policies depend on it, never
the reverse.
"""

from agentroute.routing._policy import Policy
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
from agentroute.routing.point import Choice, Exhausted, Option, Pending, TaskRouter, mask_reason, option, reason_key
from agentroute.routing.policy import CAPABILITIES, GraphSpec, PolicyBase, RouterPolicy, TaskOutcome, implements
from agentroute.routing.record import DecisionRecord

__all__ = [
    "CAPABILITIES",
    "KINDS",
    "Candidate",
    "Choice",
    "Decision",
    "DecisionRecord",
    "Exhausted",
    "Feedback",
    "GraphSpec",
    "Kind",
    "Masked",
    "Observation",
    "Option",
    "Pending",
    "Policy",
    "PolicyBase",
    "RouterPolicy",
    "TaskInfo",
    "TaskOutcome",
    "TaskRouter",
    "implements",
    "mask_reason",
    "one_hot",
    "option",
    "reason_key",
]
