"""What a server serves: compiled graphs and bare routers, with the adapters between OpenAI requests and state.

``agentroute serve MODULE:OBJECT`` loads OBJECT, which is an :class:`~agentroute.runtime.App`, an
:class:`~agentroute.graph.AgentGraph` (compiled here with ``--policy`` and ``--provider``), a :class:`Router`, a
:class:`Served` (any of those with its own adapters), or a dict of name → any of those. Graphs are listed as
``agentroute/<name>`` and routers as ``router/<name>``.

A request reaches a graph as the input state ``{"messages": [...], "input": <last user text>}``; the reply is the
final state's ``output`` (else ``answer``). :class:`Served` overrides both with ``to_input(body)`` and
``to_output(state)``. This module never handles HTTP.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentroute.errors import ConfigError
from agentroute.graph import AgentGraph
from agentroute.llm import ModelTier
from agentroute.records import RunHooks
from agentroute.runtime import App

ToInput = Callable[[Mapping[str, Any]], dict[str, Any]]
ToOutput = Callable[[Mapping[str, Any]], str]


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last ``user`` message (text parts of a multi-part content joined by spaces)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping)
                                and p.get("type") == "text")
    return ""


def default_input(body: Mapping[str, Any]) -> dict[str, Any]:
    """``{"messages": body["messages"], "input": <last user text>}``."""
    messages = list(body.get("messages") or [])
    return {"messages": messages, "input": last_user_text(messages)}


def default_output(state: Mapping[str, Any]) -> str:
    """The final state's ``output``, else ``answer``, else an empty string."""
    for k in ("output", "answer"):
        v = state.get(k)
        if v is not None:
            return v if isinstance(v, str) else str(v)
    return ""


class Router:
    """A bare router: one model routing point over ``tiers``, decided by ``policy``, served as ``router/<name>``.

    The request's messages go to the chosen tier as they are (``max_tokens`` from the request caps the answer,
    and the budget caps it further); the reply is the model's text. It is a one-agent graph underneath, so it is
    budgeted, traced and metered like any graph.
    """

    def __init__(self, name: str, tiers: Sequence[ModelTier], policy: Any, provider: Any = None, *,
                 max_tokens: int | None = None, hooks: Sequence[RunHooks] = (), **compile_kwargs: Any) -> None:
        if not tiers:
            raise ConfigError(f"router {name!r} has no tiers", name=name, hint="give it two ModelTiers or more")
        self.name = name
        self.tiers = tuple(tiers)
        default_max = max_tokens
        graph = AgentGraph(name)

        @graph.agent(tiers=list(tiers), description="one model call, tier chosen by the policy")
        async def complete(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            reply = await ctx.acomplete(state["messages"], max_tokens=state.get("max_tokens") or default_max)
            return {"output": reply.text}

        graph.start("complete")
        self.app: App = graph.compile(policy, provider, hooks=hooks, text_key="input", **compile_kwargs)


def router_input(body: Mapping[str, Any]) -> dict[str, Any]:
    """A router's input: the default input plus the request's ``max_tokens``."""
    state = default_input(body)
    mt = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(mt, int) and not isinstance(mt, bool) and mt > 0:
        state["max_tokens"] = mt
    return state


@dataclass
class Served:
    """One served object: a compiled app with its kind and adapters. Pass it in a dict to override adapters."""

    app: App | AgentGraph | Router
    to_input: ToInput | None = None
    to_output: ToOutput | None = None
    kind: Literal["graph", "router"] | None = None


@dataclass(frozen=True)
class Target:
    """A resolved served object: its model id, app and adapters."""

    name: str
    kind: Literal["graph", "router"]
    app: App
    to_input: ToInput
    to_output: ToOutput

    @property
    def model_id(self) -> str:
        """``agentroute/<name>`` for graphs, ``router/<name>`` for routers."""
        return f"{'agentroute' if self.kind == 'graph' else 'router'}/{self.name}"


def resolve(obj: Any, *, policy: Any = None, provider: Any = None) -> dict[str, Target]:
    """Turn a loaded object into targets by model id; an :class:`AgentGraph` is compiled with ``policy``."""
    items: dict[str | None, Any] = dict(obj) if isinstance(obj, Mapping) else {None: obj}
    if not items:
        raise ConfigError("nothing to serve: the dict is empty", name="OBJECT")
    out: dict[str, Target] = {}
    for name, item in items.items():
        t = _target(name, item, policy, provider)
        if t.model_id in out:
            raise ConfigError(f"two served objects are both {t.model_id!r}", name=t.model_id,
                              hint="give them different names in the dict")
        out[t.model_id] = t
    return out


def _target(name: str | None, item: Any, policy: Any, provider: Any) -> Target:
    served = item if isinstance(item, Served) else Served(item)
    obj = served.app
    if isinstance(obj, Router):
        app, kind, default_in = obj.app, "router", router_input
        name = name or obj.name
    elif isinstance(obj, App):
        app, kind, default_in = obj, "graph", default_input
    elif isinstance(obj, AgentGraph):
        if policy is None:
            raise ConfigError(f"graph {obj.name!r} is not compiled and no policy was given", name=obj.name,
                              hint="pass --policy (a rules file, cheapest, strongest, or MODULE:OBJECT), or "
                              "serve a compiled App")
        app, kind, default_in = obj.compile(policy, provider), "graph", default_input
    else:
        raise ConfigError(f"cannot serve a {type(obj).__name__}", name=name or type(obj).__name__,
                          hint="serve an App, an AgentGraph, an agentroute.serve.Router, or a dict of them")
    kind = served.kind or kind
    name = name or app.graph.name
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"served name {name!r} must be a non-empty string without '/'", name=str(name))
    return Target(name, kind, app, served.to_input or default_in, served.to_output or default_output)  # type: ignore[arg-type]


def load_object(spec: str) -> Any:
    """Import ``MODULE:OBJECT`` (OBJECT may be dotted); the working directory is importable."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{spec!r} is not MODULE:OBJECT", name=spec, hint="e.g. myapp:app or pkg.graphs:served")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ConfigError(f"no module {module!r} (looked in {cwd} and the installed packages)", name=module,
                              hint="run from the directory that holds it, or install it") from None
        raise
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"module {module!r} has no attribute {attr!r}", name=attr)
        obj = getattr(obj, part)
    return obj


def load_policy(spec: str | None) -> Any:
    """``--policy``: ``cheapest``, ``strongest``, ``random``, a rules YAML file, or ``MODULE:OBJECT``."""
    if spec is None:
        return None
    from agentroute import policies

    named = {"cheapest": policies.Cheapest, "strongest": policies.Strongest, "random": policies.Random}
    if spec in named:
        return named[spec]()
    if spec.endswith((".yaml", ".yml")):
        return policies.RulePolicy.from_file(spec)
    obj = load_object(spec)
    return obj() if isinstance(obj, type) else obj


def load_provider(spec: str | None) -> Any:
    """``--provider``: ``live`` (default: the real APIs through LiteLLM) or ``simulated[:SEED]`` (offline)."""
    if spec is None or spec == "live":
        return None
    from agentroute import providers

    kind, _, seed = spec.partition(":")
    if kind == "simulated":
        try:
            return providers.Simulated(seed=int(seed or 0))
        except ValueError:
            raise ConfigError(f"--provider {spec!r}: the seed must be an integer", name="--provider") from None
    raise ConfigError(f"unknown provider {spec!r}", name="--provider", hint="use live or simulated[:SEED]")


__all__ = ["Router", "Served", "Target", "default_input", "default_output", "last_user_text", "load_object",
           "load_policy", "load_provider", "resolve", "router_input"]
