"""The one decision record: what a run returns, what a span carries, what the store keeps and reads back.

This module must stay free of runtime, LangGraph, LiteLLM and SQL imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentroute.routing._types import Candidate, Kind, Masked


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One routing decision as the runtime recorded it: the policy's :class:`Decision` plus its context."""

    task_id: str
    index: int
    kind: Kind
    point: str
    node: str
    step: int
    chosen: str
    probabilities: Mapping[str, float]
    scores: Mapping[str, float]
    reason: str
    policy: str
    policy_version: str
    explored: bool
    candidates: tuple[Candidate, ...]
    masked: tuple[Masked, ...]
    budget_before: Mapping[str, Any]
    budget_after: Mapping[str, Any] | None = None
    reservation: Mapping[str, Any] | None = None
    cost_usd: Decimal | None = None
    tokens: int = 0
    quality: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    decided_ns: int = 0
    """When the policy decided (``time.time_ns()``); the record itself is emitted once the step settled."""

    @property
    def propensity(self) -> float:
        """Probability the policy gave to the option it chose (for off-policy evaluation)."""
        return float(self.probabilities.get(self.chosen, 0.0))


__all__ = ["DecisionRecord"]
