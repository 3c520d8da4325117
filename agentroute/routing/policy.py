"""The policy contract: the protocol every routing policy implements, and what a compiled graph offers it.

A policy never imports the runtime: it sees an :class:`~agentroute.routing.Observation` and returns a
:class:`~agentroute.routing.Decision`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from agentroute.routing._types import Decision, Feedback, Observation


class GraphSpec:
    """What a compiled graph offers, per routing point kind: the ids a policy may name (checked at compile time)."""

    __slots__ = ("agents", "graph", "memory_tiers", "points", "tiers")

    def __init__(
        self,
        graph: str,
        agents: Sequence[str],
        tiers: Sequence[str],
        memory_tiers: Sequence[str] = ("low", "mid", "high"),
        points: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.graph = graph
        self.agents = tuple(agents)
        self.tiers = tuple(tiers)
        self.memory_tiers = tuple(memory_tiers)
        self.points = dict(points or {})

    def ids(self, kind: str | None = None) -> set[str]:
        """Every id a decision of ``kind`` (or of any kind) may choose; ``__end__`` is an agent-point option."""
        if kind == "agent":
            return {*self.agents, "__end__"}
        if kind == "model":
            return set(self.tiers)
        if kind == "memory":
            return set(self.memory_tiers)
        return {*self.agents, "__end__", *self.tiers, *self.memory_tiers}


@runtime_checkable
class RouterPolicy(Protocol):
    """The one protocol every policy implements: rules, cascades, baselines, learned, pheromone and bandits.

    ``decide`` must return one of ``obs.candidates`` (never a masked or unknown id) and should be fast: it runs
    on every step. ``feedback`` is called after each decision's step, and may be a no-op.
    """

    name: str
    version: str

    def decide(self, obs: Observation) -> Decision:
        """Choose one of ``obs.candidates``."""
        ...

    def feedback(self, fb: Feedback) -> None:
        """Learn from what happened (no-op for fixed policies)."""
        ...


__all__ = ["GraphSpec", "RouterPolicy"]
