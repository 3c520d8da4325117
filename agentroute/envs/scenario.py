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
"""

from __future__ import annotations

import importlib
import inspect
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
    out: dict[str, Any] = {}
    for k, v in getattr(node, "value", None) or []:
        if hasattr(k, "value") and isinstance(k.value, str):
            out[k.value] = v
    return out


def constructor_keywords(env_id: str) -> list[str]:
    """The keyword arguments the environment registered as ``env_id`` accepts (its constructor's parameters)."""
    if env_id not in ENV_IDS:
        raise ConfigError(f"unknown environment {env_id!r}", name="env", hint=f"one of {', '.join(ENV_IDS)}")
    mod, _, attr = ENV_IDS[env_id].partition(":")
    cls = getattr(importlib.import_module(mod), attr)
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; errors name the file, the line and what is allowed."""
    import yaml

    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read scenario {source}: {e.strerror or e}", name=source,
                          hint="pass the path of a YAML scenario file, e.g. envs/support-graph.yaml") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}", name=source) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario is a mapping with keys {', '.join(_TOP_KEYS)}", name=source)
    nodes = _key_nodes(root)
    unknown = sorted(set(data) - set(_TOP_KEYS))
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
        if isinstance(v, str) and not Path(v).is_absolute():
            options[key] = str((p.parent / v).resolve())
    if isinstance(options.get("budget"), Mapping):
        from agentroute.budget import Budget

        try:
            Budget(**options["budget"])
        except (TypeError, ValueError, ConfigError) as e:
            raise ConfigError(f"{_where(source, opt_nodes.get('budget'))}: bad budget: {e}", name="budget",
                              hint="keys usd, tokens, steps, seconds") from None
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
    return Scenario(env_id=env_id, options=options, train=dict(train), description=str(data.get("description") or ""),
                    source=source)


__all__ = ["ALGOS", "TRAIN_KEYS", "Scenario", "constructor_keywords", "load_scenario"]
