"""``ar.wrap(state_graph, policy, tiers=...)``: routing points for a graph built with LangGraph's own API.

A LangGraph ``StateGraph`` (its nodes, edges, conditional edges and state reducers) becomes an
:class:`~agentroute.graph.AgentGraph` compiled to an :class:`~agentroute.runtime.App`:

- every node is an agent: one budgeted step; the node function is called as LangGraph would call it (``state``, and
  ``config`` when it takes one), and its update is merged with the state's reducers (``Annotated[list,
  operator.add]``, ``add_messages``), so the node sees the state it would see under LangGraph;
- every conditional edge is a routing point over the targets of its ``path_map``: the policy chooses among them,
  under the budget; the path function's own answer, computed on the node's new state, is offered as the point's
  declared default (``descriptor["default"]``), so ``DeclaredDefault`` follows the graph as LangGraph would;
- a node's model calls go through the task's model routing point with :func:`complete` / :func:`acomplete` (the
  tier is the policy's, the worst case reserved, ``max_tokens`` capped) instead of calling a model directly.

Fan-out (several edges from one node, or from START) and ``Send`` have no single next step to route and are refused
with a :class:`~agentroute.errors.ConfigError` naming the node. This module never runs a task.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentroute._spec import END
from agentroute.errors import ConfigError
from agentroute.graph import AgentGraph
from agentroute.llm import ModelTier

if TYPE_CHECKING:
    from agentroute._loop import Reply
    from agentroute.context import StepContext
    from agentroute.runtime import App

_CURRENT: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("agentroute_step", default=None)
_LG_START, _LG_END = "__start__", "__end__"


def current() -> StepContext:
    """The step context of the wrapped node running now (a :class:`ConfigError` outside one)."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise ConfigError("no agentroute step is running here", name="complete",
                          hint="call ar.complete(...) inside a node of a graph built with ar.wrap(...)")
    return ctx


def complete(messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Reply:
    """A model call from inside a wrapped node: the task's model routing point (see ``StepContext.complete``)."""
    return current().complete(messages, **kwargs)


async def acomplete(messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Reply:
    """Async twin of :func:`complete`."""
    return await current().acomplete(messages, **kwargs)


def _reducers(state_graph: Any) -> dict[str, Callable[[Any, Any], Any]]:
    from langgraph.channels import BinaryOperatorAggregate

    return {k: ch.operator for k, ch in getattr(state_graph, "channels", {}).items()
            if isinstance(ch, BinaryOperatorAggregate)}


def _merged(state: Mapping[str, Any], update: Any, reducers: Mapping[str, Callable[[Any, Any], Any]]) -> Any:
    if not isinstance(update, Mapping):
        return update  # the runtime names the agent that returned something else
    out = dict(update)
    for k, v in update.items():
        op = reducers.get(k)
        if op is not None and k in state:
            out[k] = op(state[k], v)
    return out


def _suggest(ctx: Any, name: str, state: Mapping[str, Any], update: Any, branch: Any) -> None:
    """Offer the path function's answer for the new state as the next routing point's default (when it names one)."""
    path = getattr(branch.path, "func", None) if branch is not None else None
    if path is None or not isinstance(update, Mapping):
        return
    try:
        key = path({**state, **update})
    except Exception:  # the policy decides anyway; a path function that needs more than the state has no say
        return
    target = branch.ends.get(key) if isinstance(key, str) else None
    if target is not None:
        ctx._run.suggested[name] = _to(target)


def _node_fn(name: str, spec: Any, reducers: Mapping[str, Callable[[Any, Any], Any]],
             branch: Any = None) -> Callable[..., Any]:
    runnable = spec.runnable
    fn = getattr(runnable, "func", None)
    afn = getattr(runnable, "afunc", None)
    target = afn if fn is None and inspect.iscoroutinefunction(afn) else fn
    if not callable(target):
        raise ConfigError(f"node {name!r} is not a function (a {type(runnable).__name__}); wrap handles function "
                          "nodes", name=name, hint="add the node as a plain (async) function")
    takes_config = len([p for p in inspect.signature(target).parameters.values()
                        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 2

    def args(state: dict[str, Any]) -> tuple[Any, ...]:
        return (state, {"configurable": {}}) if takes_config else (state,)

    if inspect.iscoroutinefunction(target):
        async def anode(state: dict[str, Any], ctx: Any) -> Any:
            token = _CURRENT.set(ctx)
            try:
                update = _merged(state, await target(*args(state)), reducers)
            finally:
                _CURRENT.reset(token)
            _suggest(ctx, name, state, update, branch)
            return update

        return anode

    def node(state: dict[str, Any], ctx: Any) -> Any:
        token = _CURRENT.set(ctx)
        try:
            update = _merged(state, target(*args(state)), reducers)
        finally:
            _CURRENT.reset(token)
        _suggest(ctx, name, state, update, branch)
        return update

    return node


def _to(target: str) -> str:
    return END if target == _LG_END else target


def wrap(state_graph: Any, policy: Any, provider: Any = None, *,
         tiers: Sequence[ModelTier] | Mapping[str, Sequence[ModelTier]] | None = None, name: str | None = None,
         **compile_kwargs: Any) -> App:
    """Compile a LangGraph ``StateGraph`` with a routing point at each conditional edge and model call.

    ``tiers`` is the model tiers of every node (a list) or of some nodes (``{node: [tiers]}``); a node without tiers
    makes no model calls. ``compile_kwargs`` go to :meth:`AgentGraph.compile` (``budget``, ``hooks``,
    ``checkpointer``, ...). Returns the runnable :class:`~agentroute.runtime.App`.
    """
    nodes = getattr(state_graph, "nodes", None)
    if not isinstance(nodes, Mapping) or not hasattr(state_graph, "branches"):
        raise ConfigError(f"wrap() takes a langgraph StateGraph (before .compile()), got {type(state_graph).__name__}",
                          name="state_graph", hint="build it with StateGraph(State), add_node, add_edge, ...")
    per_node = dict(tiers) if isinstance(tiers, Mapping) else {n: list(tiers) for n in nodes} if tiers else {}
    unknown = sorted(set(per_node) - set(nodes))
    if unknown:
        raise ConfigError(f"tiers name node {unknown[0]!r}, which the graph lacks", name=unknown[0],
                          hint=f"nodes: {', '.join(nodes)}")
    reducers = _reducers(state_graph)
    graph = AgentGraph(name or getattr(state_graph, "name", None) or "langgraph")
    for n, spec in nodes.items():
        branch = next(iter(state_graph.branches[n].values()), None) if n in state_graph.branches else None
        graph.add_agent(n, _node_fn(n, spec, reducers, branch), tiers=per_node.get(n) or None)
    out: dict[str, list[str]] = {}
    for src, dst in sorted(state_graph.edges):
        out.setdefault(src, []).append(dst)
    starts = out.pop(_LG_START, [])
    if len(starts) != 1:
        raise ConfigError(f"the graph needs exactly one edge from START, has {len(starts)}", name="START",
                          hint="wrap routes one step at a time: no fan-out from START")
    graph.start(starts[0])
    for src, branches in state_graph.branches.items():
        if len(branches) != 1 or src in out:
            raise ConfigError(f"node {src!r} has several outgoing edges (a fan-out)", name=src,
                              hint="wrap routes one next step at a time: give it one conditional edge or one edge")
        (branch,) = branches.values()
        if not branch.ends:
            raise ConfigError(f"the conditional edge from {src!r} has no path_map, so its options are unknown",
                              name=src, hint='add_conditional_edges(src, path, {"a": "a", "b": "b", "end": END})')
        graph.route(src, to=list(dict.fromkeys(_to(t) for t in branch.ends.values())))
    for src, dsts in out.items():
        if len(dsts) != 1:
            raise ConfigError(f"node {src!r} has several outgoing edges (a fan-out)", name=src,
                              hint="wrap routes one next step at a time: give it one conditional edge or one edge")
        graph.edge(src, _to(dsts[0]))
    return graph.compile(policy, provider, **compile_kwargs)


__all__ = ["acomplete", "complete", "current", "wrap"]
