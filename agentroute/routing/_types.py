"""What a policy sees, what it returns, and what it learns from: the vocabulary of every routing point.

A routing point asks one question (which agent next, which model tier, which memory tier). The runtime builds an
:class:`Observation` (task, position, budget, candidates), masks the candidates it cannot afford (keeping the reason),
calls ``policy.decide(obs)`` and gets a :class:`Decision`. After the step it hands the policy a :class:`Feedback`.
The same objects flow through the live runtime, the Gymnasium environments and the trace exports, so one policy
object serves all three.

This module must stay free of runtime, LangGraph and LiteLLM imports: policies depend on it, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from agentroute.budget import BudgetStatus

Kind = Literal["agent", "model", "memory"]
KINDS: tuple[Kind, ...] = ("agent", "model", "memory")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One option at a routing point.

    ``rank`` orders options by strength/cost (0 = cheapest); ``cost_estimate`` is the worst-case USD cost of taking
    it now (``None`` when its price is unknown); ``descriptor`` holds anything else a policy may use (the model
    name, a prior quality, a memory method).
    """

    id: str
    kind: Kind
    rank: int = 0
    input_price: Decimal | None = None
    """USD per input token, when the option is a model call."""
    output_price: Decimal | None = None
    """USD per output token, when the option is a model call."""
    cost_estimate: Decimal | None = None
    latency_estimate: float | None = None
    """Expected seconds, when known."""
    descriptor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Masked:
    """A candidate the runtime removed before the policy decided, and why."""

    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """The task being routed: its id, its text, features and (optional) category and task-type weights."""

    id: str
    text: str = ""
    category: str | None = None
    features: Mapping[str, Any] = field(default_factory=dict)
    intent: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a policy may look at when it decides, at one routing point."""

    task: TaskInfo
    kind: Kind
    point: str
    """Name of the routing point: ``route:<agent>`` for agent choice, ``<agent>.model``, ``<agent>.memory.<module>``
    (``<agent>.memory.look<n>.<module>`` for a memory's n-th look)."""
    node: str
    """The agent at (or after) which the decision is made."""
    step: int
    """Agent executions so far in this task."""
    history: tuple[tuple[str, str], ...]
    """Past decisions of this task as ``(point, chosen)`` pairs, oldest first."""
    budget: BudgetStatus
    candidates: tuple[Candidate, ...]
    """The affordable candidates, cheapest first. Never empty when a policy is asked."""
    masked: tuple[Masked, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Point-specific facts: for model calls ``input_tokens`` and ``max_tokens``; for cascades ``tried``."""

    def candidate(self, cid: str) -> Candidate | None:
        """The candidate named ``cid``, or ``None``."""
        for c in self.candidates:
            if c.id == cid:
                return c
        return None

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids of the affordable candidates."""
        return tuple(c.id for c in self.candidates)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy returns: the choice, a probability for every candidate, scores, and a readable reason.

    ``probabilities`` is the propensity of each candidate (it sums to 1 over the affordable candidates); a
    deterministic policy puts 1.0 on its choice. ``explored`` is true when the choice was a deliberate exploration.
    """

    chosen: str
    probabilities: Mapping[str, float]
    reason: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    explored: bool = False
    evidence: Mapping[str, Any] = field(default_factory=dict)
    """Policy-specific facts to record with the decision (pheromone levels, rule matched, model outputs)."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """What happened after a decision, handed to ``policy.feedback`` (online learners use it)."""

    observation: Observation
    decision: Decision
    cost_usd: Decimal | None
    tokens: int
    latency: float
    quality: float | None = None
    """A quality signal in [0, 1] when one is known (a simulated provider, a scorer, a judge)."""
    ok: bool = True
    error: str | None = None


def one_hot(obs: Observation, chosen: str) -> dict[str, float]:
    """Probabilities of a deterministic choice: 1.0 on ``chosen``, 0.0 on every other candidate."""
    return {c.id: (1.0 if c.id == chosen else 0.0) for c in obs.candidates}


__all__ = [
    "KINDS",
    "Candidate",
    "Decision",
    "Feedback",
    "Kind",
    "Masked",
    "Observation",
    "TaskInfo",
    "one_hot",
]
