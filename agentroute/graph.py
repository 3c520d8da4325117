"""The AgentGraph builder: agents, fixed edges and routing points, compiled to a LangGraph ``StateGraph``.

The builder only records what the user declared and validates it at :meth:`AgentGraph.compile`, naming the
offending agent, tier or route. Execution belongs to :mod:`agentroute.runtime`; this module never runs a task.

Every agent node and every edge is wrapped so the runtime's loop (observe, mask, decide, reserve, execute, commit,
feedback) runs at each routing point, and so a task whose budget is exhausted leaves the graph cleanly at END with
its partial state.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from agentroute._spec import END, AgentFn, AgentSpec
from agentroute.budget import Budget
from agentroute.errors import ConfigError
from agentroute.llm import ModelTier

if TYPE_CHECKING:
    from agentroute.providers import Provider
    from agentroute.records import RunHooks
    from agentroute.routing import RouterPolicy
    from agentroute.runtime import App  # graph -> runtime only: the runtime never imports this module

F = TypeVar("F", bound=AgentFn)


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{what} name must be a non-empty string, got {name!r}", name=repr(name))
    if name == END or name.startswith("__"):
        raise ConfigError(f"{what} name {name!r} is reserved", name=name, hint="names may not start with '__'")
    return name


class AgentGraph:
    """A graph of agents in which a router policy chooses the next agent, the model tier and the memory tier.

    >>> graph = AgentGraph("support")
    >>> @graph.agent(tiers=[ModelTier("small", model="openai/gpt-4o-mini")])
    ... def triage(state, ctx):
    ...     return {"draft": ctx.complete([{"role": "user", "content": state["question"]}]).text}
    >>> graph.start("triage")
    """

    def __init__(self, name: str) -> None:
        self.name = _check_name(name, "graph")
        self.agents: dict[str, AgentSpec] = {}
        self.entry: str | None = None
        self.edges: dict[str, str] = {}
        self.routes: dict[str, tuple[str, ...]] = {}

    # -- declaring ------------------------------------------------------------------------------------------
    @overload
    def agent(self, fn: F, *, name: str | None = ..., tiers: Sequence[ModelTier] | None = ..., memory: Any = ...,
              description: str = ...) -> F: ...

    @overload
    def agent(self, fn: None = ..., *, name: str | None = ..., tiers: Sequence[ModelTier] | None = ...,
              memory: Any = ..., description: str = ...) -> Callable[[F], F]: ...

    def agent(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        tiers: Sequence[ModelTier] | None = None,
        memory: Any = None,
        description: str = "",
    ) -> F | Callable[[F], F]:
        """Register ``fn(state, ctx) -> dict`` (sync or async) as an agent; usable bare or with arguments."""

        def register(f: F) -> F:
            self.add_agent(name or f.__name__, f, tiers=tiers, memory=memory, description=description)
            return f

        return register(fn) if fn is not None else register

    def add_agent(
        self,
        name: str,
        fn: AgentFn,
        *,
        tiers: Sequence[ModelTier] | None = None,
        memory: Any = None,
        description: str = "",
    ) -> AgentSpec:
        """Register an agent under ``name``. ``tiers`` is ``None`` for an agent that calls no model."""
        _check_name(name, "agent")
        if name in self.agents:
            raise ConfigError(f"duplicate agent name {name!r} in graph {self.name!r}", name=name)
        if not callable(fn):
            raise ConfigError(f"agent {name!r} must be callable, got {type(fn).__name__}", name=name)
        tier_tuple: tuple[ModelTier, ...] = ()
        if tiers is not None:
            tier_tuple = tuple(tiers)
            if not tier_tuple:
                raise ConfigError(f"agent {name!r} has an empty tier list", name=name,
                                  hint="give at least one ModelTier, or tiers=None for an agent without model calls")
            seen: set[str] = set()
            for t in tier_tuple:
                if not isinstance(t, ModelTier):
                    raise ConfigError(f"agent {name!r}: tiers must be ModelTier objects, got {type(t).__name__}",
                                      name=name)
                if t.name in seen:
                    raise ConfigError(f"agent {name!r} has two tiers named {t.name!r}", name=t.name)
                seen.add(t.name)
        spec = AgentSpec(name, fn, tier_tuple, memory, description, inspect.iscoroutinefunction(fn))
        self.agents[name] = spec
        return spec

    def start(self, name: str) -> AgentGraph:
        """Make ``name`` the first agent of every task."""
        self.entry = _check_name(name, "start agent")
        return self

    def edge(self, src: str, dst: str) -> AgentGraph:
        """A fixed edge: after ``src`` always comes ``dst`` (an agent or END)."""
        self._check_free(src)
        self.edges[src] = dst
        return self

    def route(self, src: str, to: Iterable[str]) -> AgentGraph:
        """A routing point: after ``src`` the policy chooses among ``to`` (agents and/or END).

        The first target is the graph's declared default (what ``Fixed``-style policies fall back to).
        """
        self._check_free(src)
        targets = tuple(to)
        if not targets:
            raise ConfigError(f"route from {src!r} has no targets", name=src, hint="e.g. to=['expert', END]")
        if len(set(targets)) != len(targets):
            raise ConfigError(f"route from {src!r} lists a target twice: {list(targets)}", name=src)
        self.routes[src] = targets
        return self

    def _check_free(self, src: str) -> None:
        if src in self.edges or src in self.routes:
            raise ConfigError(f"agent {src!r} already has an outgoing edge or route", name=src,
                              hint="declare one edge() or one route() per agent")

    # -- checking ---------------------------------------------------------------------------------------------
    def successors(self, name: str) -> tuple[str, ...]:
        """Where a task may go after ``name`` (END when nothing was declared)."""
        if name in self.routes:
            return self.routes[name]
        if name in self.edges:
            return (self.edges[name],)
        return (END,)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for anything that would make the graph unrunnable."""
        if not self.agents:
            raise ConfigError(f"graph {self.name!r} has no agents", name=self.name, hint="add one with @graph.agent")
        if self.entry is None:
            raise ConfigError(f"graph {self.name!r} has no start agent", name=self.name,
                              hint="call graph.start('<agent>')")
        if self.entry not in self.agents:
            raise ConfigError(f"start agent {self.entry!r} is not an agent of graph {self.name!r}", name=self.entry,
                              hint=f"agents: {', '.join(self.agents)}")
        for src, targets in [*((s, (d,)) for s, d in self.edges.items()), *self.routes.items()]:
            if src not in self.agents:
                raise ConfigError(f"edge or route from unknown agent {src!r}", name=src,
                                  hint=f"agents: {', '.join(self.agents)}")
            for t in targets:
                if t != END and t not in self.agents:
                    raise ConfigError(f"route from {src!r} goes to unknown agent {t!r}", name=t,
                                      hint=f"agents: {', '.join(self.agents)}, or END")
        # END must be reachable from the start, or no task could ever finish.
        seen, todo = {self.entry}, [self.entry]
        reaches_end = False
        while todo:
            for nxt in self.successors(todo.pop()):
                if nxt == END:
                    reaches_end = True
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if not reaches_end:
            raise ConfigError(f"graph {self.name!r} has no path from {self.entry!r} to END", name=self.entry,
                              hint="add END as a route target somewhere reachable")
        unreachable = set(self.agents) - seen
        if unreachable:
            warnings.warn(f"graph {self.name!r}: agents never reached from the start: {sorted(unreachable)}",
                          UserWarning, stacklevel=3)

    def tiers(self) -> list[ModelTier]:
        """Every distinct tier of the graph, in declaration order."""
        out: dict[str, ModelTier] = {}
        for a in self.agents.values():
            for t in a.tiers:
                if t.name in out and out[t.name] != t:
                    raise ConfigError(f"two different tiers are both named {t.name!r}", name=t.name,
                                      hint="tier names identify a tier across the graph; rename one")
                out.setdefault(t.name, t)
        return list(out.values())

    # -- compiling --------------------------------------------------------------------------------------------
    def compile(
        self,
        policy: RouterPolicy,
        provider: Provider | None = None,
        *,
        budget: Budget | None = None,
        hooks: Sequence[RunHooks] = (),
        on_exhausted: Literal["truncate", "error"] = "truncate",
        min_answer_tokens: int = 16,
        max_retries: int = 2,
        scorer: Callable[[dict[str, Any]], float] | None = None,
        capture_content: bool = False,
        checkpointer: Any = None,
        text_key: str | None = None,
        shadow: Sequence[RouterPolicy] = (),
        on_violation: Literal["record", "error"] = "record",
        charge_failed: Literal["worst_case", "reported"] = "worst_case",
    ) -> App:
        """Validate the graph and build a runnable :class:`~agentroute.runtime.App`.

        ``policy`` decides at every routing point; ``provider`` is where model calls go (``None`` = the real APIs
        through LiteLLM); ``budget`` is the default for runs that pass none; ``on_exhausted="error"`` raises
        :class:`~agentroute.errors.BudgetExhausted` instead of returning a truncated result; ``scorer(state)``
        gives a task's quality; ``text_key`` names the input field policies read as the task text.
        ``on_violation="error"`` raises :class:`~agentroute.errors.BudgetViolation` when a call spent past its worst
        case (by default the run returns with status ``overrun``); ``charge_failed="reported"`` charges failed and
        cancelled calls nothing instead of their worst case. ``shadow``
        policies decide at every routing point on the same observation without acting: their would-be choices and
        probabilities are recorded with each decision (``DecisionRecord.shadow``), for off-policy comparison.
        """
        from agentroute.runtime import App

        return App(
            self,
            policy,
            provider,
            budget=budget,
            hooks=hooks,
            on_exhausted=on_exhausted,
            min_answer_tokens=min_answer_tokens,
            max_retries=max_retries,
            scorer=scorer,
            capture_content=capture_content,
            checkpointer=checkpointer,
            text_key=text_key,
            shadow=shadow,
            on_violation=on_violation,
            charge_failed=charge_failed,
        )


__all__ = ["END", "AgentGraph", "AgentSpec"]
