"""The LangGraph side of a compiled graph: every agent node and every edge only finds the task's run and calls it.

:class:`~agentroute.runtime.App` builds its ``StateGraph`` from these: a node holds its step, hands the agent a
:class:`~agentroute.context.StepContext` and commits (:meth:`~agentroute._loop.TaskRun.enter` / ``exit``); an edge is
a routing point (:meth:`~agentroute._loop.TaskRun.route_agent`) or a fixed edge that leaves for END once the task
must stop. The task's :class:`~agentroute._loop.TaskRun` travels in the run config under :data:`RUN_KEY`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentroute._loop import TaskRun, visible
from agentroute._spec import END, AgentSpec
from agentroute.context import StepContext

RUN_KEY = "__agentroute_task"
"""Where the task's run travels in LangGraph's ``configurable``."""


def router(src: str, targets: tuple[str, ...], routed: bool) -> Callable[..., str]:
    def route(state: dict[str, Any], config: Any) -> str:
        run: TaskRun = config["configurable"][RUN_KEY]
        if run.stopped:
            return END
        return run.route_agent(src) if routed else targets[0]

    route.__name__ = f"route_{src}"
    return route


def edge(route: Callable[..., str]) -> Any:
    """A routing point as LangGraph's path callable, with an async twin that runs it in place.

    LangGraph runs a plain function given as a path in a worker thread under ``ainvoke`` (a thread hop and a GIL
    hand-off per edge); the twin keeps the decision on the event loop, as model routing points are. The plain
    function itself when this LangGraph lays out its runnables differently.
    """
    try:
        from langgraph._internal._runnable import RunnableCallable
    except ImportError:  # pragma: no cover - another LangGraph layout: the worker thread
        return route

    async def aroute(state: dict[str, Any], config: Any) -> str:
        return route(state, config)

    aroute.__annotations__ = dict(route.__annotations__)
    return RunnableCallable(route, aroute, name=route.__name__)


def node(spec: AgentSpec) -> Callable[..., Any]:
    if spec.is_async:

        async def anode(state: dict[str, Any], config: Any) -> dict[str, Any]:
            run: TaskRun = config["configurable"][RUN_KEY]
            if not run.enter(spec):
                return state
            try:
                update = await spec.fn(visible(state), StepContext(run, spec, run.steps))
            except BaseException as e:
                return run.exit(spec, state, None, e)
            return run.exit(spec, state, update, None)

        anode.__name__ = spec.name
        return anode

    def node(state: dict[str, Any], config: Any) -> dict[str, Any]:
        run: TaskRun = config["configurable"][RUN_KEY]
        if not run.enter(spec):
            return state
        try:
            update = spec.fn(visible(state), StepContext(run, spec, run.steps))
        except BaseException as e:
            return run.exit(spec, state, None, e)
        return run.exit(spec, state, update, None)

    node.__name__ = spec.name
    return node


__all__ = ["RUN_KEY", "edge", "node", "router"]
