"""The policy contract: the protocol every routing policy implements, and what a compiled graph offers it.

A policy never imports the runtime: it sees an :class:`~agentroute.routing.Observation` and returns a
:class:`~agentroute.routing.Decision`. Every optional capability (:data:`CAPABILITIES`) is declared on
:class:`RouterPolicy` with its default and implemented by :class:`PolicyBase`; :func:`implements` tells a driver
whether a policy really provides one (overrides the default), so a driver can skip work nobody asked for.

Who calls what: the runtime calls ``bind`` at compile time, ``decide``/``feedback`` at every routing point,
``accept`` after each model reply and ``on_task_end`` once per task; evaluation sweeps call ``predict_outcomes``.
The cost weight λ a policy reads (its own ``cost_weight``, or ``obs.extra["cost_weight"]``) is per USD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from agentroute.routing._types import Decision, Feedback, Observation
from agentroute.routing.record import DecisionRecord


class GraphSpec:
    """What a compiled graph offers, per routing point kind: the ids a policy may name (checked at compile time)."""

    __slots__ = ("agents", "graph", "memory_tiers", "models", "points", "tiers")

    def __init__(
        self,
        graph: str,
        agents: Sequence[str],
        tiers: Sequence[str],
        memory_tiers: Sequence[str] = ("low", "mid", "high"),
        points: Mapping[str, Sequence[str]] | None = None,
        models: Mapping[str, str] | None = None,
    ) -> None:
        self.graph = graph
        self.agents = tuple(agents)
        self.tiers = tuple(tiers)
        self.memory_tiers = tuple(memory_tiers)
        self.points = dict(points or {})
        self.models: dict[str, str] = dict(models or {})
        """The model each tier calls (tier name -> LiteLLM model name), when the graph says; a policy fitted on
        model names maps tiers through it."""

    def ids(self, kind: str | None = None) -> set[str]:
        """Every id a decision of ``kind`` (or of any kind) may choose; ``__end__`` is an agent-point option."""
        if kind == "agent":
            return {*self.agents, "__end__"}
        if kind == "model":
            return set(self.tiers)
        if kind == "memory":
            return set(self.memory_tiers)
        return {*self.agents, "__end__", *self.tiers, *self.memory_tiers}


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a task ended, handed to :meth:`RouterPolicy.on_task_end` (end-of-task credit for path learners)."""

    task_id: str
    quality: float | None
    """The task's quality in [0, 1] when known (a scorer, a simulated provider, a judge); ``None`` otherwise."""
    cost_usd: Decimal | None
    tokens: int
    ok: bool
    """False when the task raised (its path should not be credited)."""
    truncated: bool
    reason: str
    decisions: tuple[DecisionRecord, ...] = ()


CAPABILITIES = ("feedback", "bind", "accept", "on_task_end", "predict_outcomes")
"""The optional capabilities of :class:`RouterPolicy`, each with a default in :class:`PolicyBase`."""


@runtime_checkable
class RouterPolicy(Protocol):
    """The one contract of every policy family (rules, cascades, baselines, predictive, bandits, learned, pheromone).

    ``decide`` is required; every other capability is declared here with its default, so a policy implements only
    what it needs (subclass :class:`PolicyBase` to inherit the defaults; the runtime fills them in for a plain object
    that only has ``decide``):

    - ``feedback(fb)`` — after each decision's step (online learners); default: nothing.
    - ``bind(spec)`` — at compile time, check every option the policy names exists in the graph; raise
      :class:`~agentroute.errors.ConfigError` naming what does not; default: nothing.
    - ``accept(obs, decision, reply)`` — after a model reply: ``False`` asks for a stronger tier (cascades);
      default: ``True``.
    - ``on_task_end(outcome)`` — once per task, with its quality and spend (path credit); default: nothing.
    - ``predict_outcomes(texts, categories)`` — predicted quality and cost per option for evaluation sweeps;
      default: ``None`` (evaluation then routes every query through ``decide``).
    """

    name: str
    version: str

    def decide(self, obs: Observation) -> Decision:
        """Choose one of ``obs.candidates`` (never a masked or unknown id); runs on every step, so be fast."""
        ...

    def feedback(self, fb: Feedback) -> None:
        """Learn from what happened after a decision (no-op for fixed policies)."""
        ...

    def bind(self, spec: GraphSpec) -> None:
        """Check the policy against a compiled graph; raise ``ConfigError`` naming an unknown option."""
        ...

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """Whether a model reply is good enough (``False``: try a stronger tier)."""
        ...

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """End-of-task credit."""
        ...

    def predict_outcomes(self, texts: Sequence[str], categories: Sequence[str | None]) -> Any:
        """``(quality, cost)`` arrays of shape ``(n, n_options)``, or ``None`` when the policy cannot predict."""
        ...


class PolicyBase:
    """The defaults of every optional capability of :class:`RouterPolicy`; subclass it and implement ``decide``."""

    name: str = "policy"
    version: str = "1"

    def decide(self, obs: Observation) -> Decision:
        """Choose one of ``obs.candidates``."""
        raise NotImplementedError

    def feedback(self, fb: Feedback) -> None:
        """Learn from an outcome. Fixed policies ignore it."""

    def bind(self, spec: GraphSpec) -> None:
        """Check this policy against a graph at compile time (nothing to check by default)."""

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """Accept every reply by default."""
        return True

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """Nothing to credit by default."""

    def predict_outcomes(self, texts: Sequence[str], categories: Sequence[str | None]) -> Any:
        """No predictions by default."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


def implements(policy: Any, capability: str) -> bool:
    """Whether ``policy`` provides ``capability`` (one of :data:`CAPABILITIES`) beyond :class:`PolicyBase`'s default.

    A plain object that only has ``decide`` implements nothing optional; a :class:`PolicyBase` subclass implements
    what it overrides.
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown policy capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    method = getattr(type(policy), capability, None)
    if method is None:
        return callable(getattr(policy, capability, None))  # set on the instance
    return method is not getattr(PolicyBase, capability)


__all__ = ["CAPABILITIES", "GraphSpec", "PolicyBase", "RouterPolicy", "TaskOutcome", "implements"]
