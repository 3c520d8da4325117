"""Scenario files: an environment, its options and a training recipe in one small YAML file.

A scenario names a registered environment, the keyword arguments it is made with (workload, budget, reward, price
weight) and how to train in it, so a training run is a file you can review and commit rather than a command line
to remember. The project's own scenarios live in the repository's ``envs/`` folder::

    # envs/support-graph.yaml
    description: The support example's graph, run by the real runtime with the simulated provider.
    env: agentroute/GraphRouting-v0
    options:                       # keyword arguments of the environment's constructor
      graph: agentroute.examples:support_graph
      budget: {usd: "0.004", tokens: 3000, steps: 4}
      reward: boundary
      cost_weight_range: [0, 1]
    train: {algo: maskable_ppo, timesteps: 20000, seed: 0}

``agentroute train --scenario envs/support-graph.yaml --out policy.npz`` trains it (command-line options override
the file); in Python, ``load_scenario(path).make()`` builds the environment. Relative paths in ``table`` and
``conversations`` are read relative to the scenario file. Every key is checked against the environment's
constructor, and a mistake is reported with the file, the line and the keys that are allowed.

**Scenario files are code-adjacent: load only files from a trusted source.** ``graph: "module:attr"`` imports
``module``, which runs its top-level code. What it may name is narrow, and checked before anything is called
(:func:`check_graph_ref`): ``attr`` must be an :class:`~agentroute.graph.AgentGraph` instance, or a plain function
whose return annotation is ``AgentGraph`` (``def support_graph(...) -> AgentGraph``) and that needs no argument;
modules of the standard library (``os``, ``subprocess``, ``builtins`` ...), which cannot hold a graph, are refused
without being imported. Anything else is a :class:`~agentroute.errors.ConfigError` naming the file, the line and
``options.graph``. Loading is YAML's safe loader, bounded: at most :data:`MAX_FILE_BYTES` bytes, :data:`MAX_DEPTH`
levels of nesting and :data:`MAX_NODES` values with aliases expanded (module constants: raise them before loading a
larger file). :func:`load_scenario` raises only ``ConfigError``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentroute.envs import ENV_IDS
from agentroute.errors import ConfigError

TRAIN_KEYS = {"algo": str, "timesteps": int, "seed": int, "n_envs": int}
"""Keys of a scenario's ``train`` section and their types."""
ALGOS = ("ppo", "maskable_ppo")
_PATH_KEYS = ("table", "conversations")
_TOP_KEYS = ("description", "env", "options", "train")
_OWNER = "agentroute.envs.scenario"

MAX_FILE_BYTES = 1 << 20
"""Largest scenario file accepted, in bytes."""
MAX_DEPTH = 32
"""Deepest nesting of a scenario's YAML (lists and mappings, aliases expanded)."""
MAX_NODES = 100_000
"""Most YAML values a scenario may hold once its aliases are expanded."""


@dataclass(frozen=True)
class Scenario:
    """An environment id, the options it is made with, and a training recipe (see the module docstring)."""

    env_id: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str | None = None

    def env_kwargs(self) -> dict[str, Any]:
        """The constructor's keyword arguments, with ``budget`` built into a :class:`~agentroute.budget.Budget`."""
        kw = dict(self.options)
        if isinstance(kw.get("budget"), Mapping):
            from agentroute.budget import Budget

            kw["budget"] = Budget(**kw["budget"])
        return kw

    def make(self, **overrides: Any) -> Any:
        """``gymnasium.make`` the scenario's environment (``overrides`` replace options of the file)."""
        import gymnasium as gym

        return gym.make(self.env_id, **{**self.env_kwargs(), **overrides})


def _where(source: str, node: Any) -> str:
    return f"{source} line {node.start_mark.line + 1}" if node is not None else source


def _key_nodes(node: Any) -> dict[str, Any]:
    """Key → value node of a YAML mapping node (for line numbers)."""
    import yaml

    out: dict[str, Any] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k.value, str):
                out[k.value] = v
    return out


def _is_graph_factory(obj: Any, graph_cls: type) -> bool:
    """A plain function, callable with no argument, whose return annotation names ``graph_cls`` (or a subclass).

    A string annotation (``from __future__ import annotations``) is looked up by name in the function's module,
    attribute by attribute; it is never evaluated. A name the module does not hold at run time (imported under
    ``if TYPE_CHECKING:``) is accepted when it is spelled ``AgentGraph``: the factory declares what it returns, and
    :func:`resolve_graph` checks what it did return.
    """
    if not inspect.isfunction(obj):
        return False
    ann = (getattr(obj, "__annotations__", None) or {}).get("return")
    if isinstance(ann, str):
        parts = ann.strip().strip("'\"").split(".")
        if not all(part.isidentifier() for part in parts):
            return False
        scope: Any = obj.__globals__
        if parts[0] not in scope:
            ann = graph_cls if parts[-1] == graph_cls.__name__ else None
        else:
            ann = scope[parts[0]]
            for part in parts[1:]:
                ann = getattr(ann, part, None)
    if not (isinstance(ann, type) and issubclass(ann, graph_cls)):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def check_graph_ref(ref: Any, *, where: str = "graph") -> Any:
    """Import what ``"module:attr"`` names and check that it is a graph or a graph factory, calling nothing.

    Returns the :class:`~agentroute.graph.AgentGraph` instance, or the factory function (see the module docstring:
    a function annotated ``-> AgentGraph`` that needs no argument). ``where`` prefixes every error (the scenario's
    file, line and field). Importing ``module`` runs its top-level code: the reference must come from a trusted
    source. Standard-library modules are refused before any import.
    """
    from agentroute.graph import AgentGraph

    hint = "name an AgentGraph, or a function annotated '-> AgentGraph', e.g. agentroute.examples:support_graph"
    if not isinstance(ref, str):
        raise ConfigError(f"{where}: must be a 'module:attribute' string, got {type(ref).__name__}", name="graph",
                          hint=hint)
    shown = repr(ref if len(ref) <= 200 else ref[:200] + "...")
    mod, sep, attr = ref.partition(":")
    if not sep or not attr.isidentifier() or not all(part.isidentifier() for part in mod.split(".")):
        raise ConfigError(f"{where}: {shown} is not 'module:attribute' (dotted module, one attribute name)",
                          name="graph", hint=hint)
    top = mod.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise ConfigError(f"{where}: {shown} names a module of the standard library, which holds no AgentGraph; "
                          "it was not imported", name="graph", hint=hint)
    try:
        module = importlib.import_module(mod)
    except Exception as e:  # a module's top level may raise anything
        raise ConfigError(f"{where}: cannot import the module of {shown}: {type(e).__name__}: {str(e)[:300]}",
                          name="graph", hint=hint) from None
    if attr not in vars(module):  # no module-level __getattr__: what the module defines, nothing computed
        raise ConfigError(f"{where}: {shown}: the module has no attribute {attr[:200]!r}", name="graph", hint=hint)
    obj = vars(module)[attr]
    if isinstance(obj, AgentGraph) or _is_graph_factory(obj, AgentGraph):
        return obj
    kind = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
    raise ConfigError(f"{where}: {shown} is {kind}, not an AgentGraph or a function annotated '-> AgentGraph' "
                      "that needs no argument; nothing was called", name="graph", hint=hint)


def resolve_graph(ref: Any, *, where: str = "graph") -> Any:
    """The :class:`~agentroute.graph.AgentGraph` that ``"module:attr"`` names: checked first, then built.

    A factory is called only after :func:`check_graph_ref` accepted it, and what it returns must be an AgentGraph.
    """
    from agentroute.graph import AgentGraph

    obj = check_graph_ref(ref, where=where)
    if isinstance(obj, AgentGraph):
        return obj
    graph = obj()
    if not isinstance(graph, AgentGraph):
        raise ConfigError(f"{where}: {ref[:200]!r} returned a {type(graph).__name__}, not an AgentGraph",
                          name="graph")
    return graph


def constructor_keywords(env_id: str) -> list[str]:
    """The keyword arguments the environment registered as ``env_id`` accepts (its constructor's parameters)."""
    if env_id not in ENV_IDS:
        raise ConfigError(f"unknown environment {env_id!r}", name="env", hint=f"one of {', '.join(ENV_IDS)}")
    mod, _, attr = ENV_IDS[env_id].partition(":")
    cls = getattr(importlib.import_module(mod), attr)
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; errors name the file, the line and what is allowed (see the limits above)."""
    from agentroute import _yaml

    p = Path(path)
    source = str(p)
    try:
        text = _yaml.read_text(p, max_bytes=MAX_FILE_BYTES, what="scenario", limit_name=f"{_OWNER}.MAX_FILE_BYTES")
    except ConfigError as e:
        raise ConfigError(str(e), name=source,
                          hint="pass the path of a YAML scenario file, e.g. envs/support-graph.yaml") from None
    data, root = _yaml.load(text, source=source, owner=_OWNER, max_chars=MAX_FILE_BYTES, max_depth=MAX_DEPTH,
                            max_nodes=MAX_NODES)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario is a mapping with keys {', '.join(_TOP_KEYS)}", name=source)
    nodes = _key_nodes(root)
    unknown = sorted((k for k in data if k not in _TOP_KEYS), key=repr)
    if unknown:
        raise ConfigError(f"{_where(source, nodes.get(unknown[0]))}: unknown key {unknown[0]!r}", name=unknown[0],
                          hint=f"allowed: {', '.join(_TOP_KEYS)}")
    env_id = data.get("env")
    if not isinstance(env_id, str):
        raise ConfigError(f"{source}: 'env' is required (an environment id)", name="env",
                          hint=f"one of {', '.join(ENV_IDS)}")
    if env_id not in ENV_IDS:
        raise ConfigError(f"{_where(source, nodes.get('env'))}: unknown environment {env_id!r}", name=env_id,
                          hint=f"one of {', '.join(ENV_IDS)}")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{_where(source, nodes.get('options'))}: 'options' must be a mapping", name="options")
    allowed = constructor_keywords(env_id)
    opt_nodes = _key_nodes(nodes.get("options"))
    for key in options:
        if key not in allowed:
            raise ConfigError(f"{_where(source, opt_nodes.get(key))}: {env_id} has no option {key!r}", name=key,
                              hint=f"allowed: {', '.join(allowed)}")
    options = dict(options)
    for key in _PATH_KEYS:
        v = options.get(key)
        if isinstance(v, str) and "\x00" in v:
            raise ConfigError(f"{_where(source, opt_nodes.get(key))}: options.{key} holds a NUL character", name=key)
        if isinstance(v, str) and not Path(v).is_absolute():
            try:
                options[key] = str((p.parent / v).resolve())
            except (OSError, RuntimeError) as e:  # e.g. a symlink loop
                raise ConfigError(f"{_where(source, opt_nodes.get(key))}: options.{key}: {e}", name=key) from None
    if isinstance(options.get("budget"), Mapping):
        from agentroute.budget import Budget

        try:
            Budget(**options["budget"])
        except (TypeError, ValueError, ConfigError) as e:  # TypeError: an unknown key
            raise ConfigError(f"{_where(source, opt_nodes.get('budget'))}: bad budget: {e}", name="budget",
                              hint="keys usd, tokens, steps, seconds") from None
    elif "budget" in options and options["budget"] is not None:
        raise ConfigError(f"{_where(source, opt_nodes.get('budget'))}: options.budget must be a mapping",
                          name="budget", hint="e.g. budget: {usd: \"0.004\", tokens: 3000, steps: 4}")
    train = data.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"{_where(source, nodes.get('train'))}: 'train' must be a mapping", name="train")
    train_nodes = _key_nodes(nodes.get("train"))
    for key, value in train.items():
        where = _where(source, train_nodes.get(key))
        if key not in TRAIN_KEYS:
            raise ConfigError(f"{where}: unknown train key {key!r}", name=key, hint=f"allowed: {', '.join(TRAIN_KEYS)}")
        if not isinstance(value, TRAIN_KEYS[key]) or isinstance(value, bool):
            raise ConfigError(f"{where}: train.{key} must be {TRAIN_KEYS[key].__name__}, got {value!r}", name=key)
        if key == "algo" and value not in ALGOS:
            raise ConfigError(f"{where}: unknown algo {value!r}", name=key, hint=f"one of {', '.join(ALGOS)}")
        if key in ("timesteps", "n_envs") and isinstance(value, int) and value < 1:
            raise ConfigError(f"{where}: train.{key} must be at least 1, got {value}", name=key)
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{_where(source, nodes.get('description'))}: 'description' must be text", name="description")
    if "graph" in options and options["graph"] is not None:  # last: importing the graph's module runs its code
        check_graph_ref(options["graph"], where=f"{_where(source, opt_nodes.get('graph'))}, options.graph")
    return Scenario(env_id=env_id, options=options, train=dict(train), description=description, source=source)


__all__ = [
    "ALGOS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "TRAIN_KEYS",
    "Scenario",
    "check_graph_ref",
    "constructor_keywords",
    "load_scenario",
    "resolve_graph",
]
