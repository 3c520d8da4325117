"""The ``agentroute`` command.

Every sub-command lives in its own module and is registered lazily, so ``agentroute --help`` stays fast: nothing
here imports LiteLLM, LangGraph, torch or the data stack at import time. A command module exposes
``register(main: click.Group) -> None``. Errors a user can fix exit with code 2 and a one-line message.
"""

from __future__ import annotations

import importlib

import click

from agentroute.errors import AgentRouteError

# (module, human name) of every command module; each adds its commands to ``main``.
_COMMAND_MODULES = (
    "agentroute.cli_demo",
    "agentroute.cli_traces",
    "agentroute.cli_learn",
    "agentroute.cli_train",
    "agentroute.cli_pheromone",
    "agentroute.cli_memory",
    "agentroute.serve.cli",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentroute")
def main() -> None:
    """agentroute: budget-aware routing in graphs of LLM agents."""


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
    except SystemExit:
        raise


_register_all()
