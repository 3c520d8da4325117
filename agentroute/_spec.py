"""What a declared graph is made of, as the runtime reads it: :class:`AgentSpec`, ``END`` and :class:`GraphDef`.

The builder (:mod:`agentroute.graph`) produces these and the runtime (:mod:`agentroute.runtime`) consumes them, so
neither imports the other's module to know the shape: the graph builder imports the runtime only to compile, and the
runtime never imports the builder. Nothing here runs a task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentroute.llm import ModelTier

END = "__end__"
"""Where a task stops: use it as a route target (``graph.route("triage", to=["expert", END])``)."""

AgentFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent: its function, the model tiers it may call (cheapest first after compile) and its memory."""

    name: str
    fn: AgentFn
    tiers: tuple[ModelTier, ...]
    memory: Any = None
    description: str = ""
    is_async: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)


class GraphDef(Protocol):
    """The declared graph the runtime compiles (what :class:`~agentroute.graph.AgentGraph` offers)."""

    name: str
    agents: dict[str, AgentSpec]
    entry: str | None
    routes: dict[str, tuple[str, ...]]

    def validate(self) -> None:
        """Raise ``ConfigError`` for anything that would make the graph unrunnable."""
        ...

    def successors(self, name: str) -> tuple[str, ...]:
        """Where a task may go after ``name``."""
        ...

    def tiers(self) -> list[ModelTier]:
        """Every distinct tier of the graph, in declaration order."""
        ...


__all__ = ["END", "AgentFn", "AgentSpec", "GraphDef"]
