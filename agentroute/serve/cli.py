"""``agentroute serve MODULE:OBJECT``: run the OpenAI-compatible server under uvicorn.

Everything is checked in this process first (the object loads, the tenants file validates, several workers have a
shared ledger), so a mistake prints one line and exits 2 before any worker starts. Workers then build the same
app from ``AGENTROUTE_SERVE_CONFIG``. Only ``click`` is imported at module level.
"""

from __future__ import annotations

import dataclasses
import json
import os

import click

from agentroute._cli_util import CliError, friendly


class ServeError(CliError):
    """A problem the user can fix: printed as one line, exit code 2."""


@click.command("serve")
@click.argument("target", metavar="MODULE:OBJECT")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes; more than one needs --ledger redis:// or an SQL URL.")
@click.option("--tenants", "tenants", default=None, metavar="FILE",
              help="Tenants file (YAML): API keys, tenants, teams and their budgets. Without it the server is open.")
@click.option("--store", default=None, metavar="URL",
              help="Trace store URL (default: $AGENTROUTE_DATABASE_URL, else ./agentroute.db); 'none' for no traces.")
@click.option("--ledger", default=None, metavar="URL",
              help="Where budgets are kept: redis://HOST:PORT/DB or postgresql+psycopg://... (default: in memory).")
@click.option("--ledger-prefix", default="serve", show_default=True,
              help="Namespace of this server's ledgers in Redis or SQL.")
@click.option("--policy", default=None, metavar="SPEC",
              help="Policy for an uncompiled AgentGraph: cheapest, strongest, random, a rules .yaml, or MODULE:OBJECT.")
@click.option("--provider", default=None, metavar="SPEC",
              help="Provider for an uncompiled AgentGraph: live (default) or simulated[:SEED].")
@click.option("--owner", default=None, metavar="NAME",
              help="This server's name in its tasks' checkpoints (default: the host name); on start it resumes the "
                   "unfinished tasks it owns.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@friendly(ServeError)
def serve(target: str, host: str, port: int, workers: int, tenants: str | None, store: str | None,
          ledger: str | None, ledger_prefix: str, policy: str | None, provider: str | None, owner: str | None,
          log_level: str) -> None:
    """Serve MODULE:OBJECT (an App, an AgentGraph, a Router, or a dict of them) as an OpenAI-compatible API."""
    try:
        import uvicorn
    except ImportError:
        raise ServeError("agentroute serve needs starlette and uvicorn: pip install 'agentroute[serve]'") from None
    from agentroute.serve._app import ENV_CONFIG, ServeConfig, app_from_config

    if workers > 1 and ledger is None:
        raise ServeError(f"--workers {workers} needs a shared ledger: --ledger redis://HOST:PORT/DB or "
                         "--ledger postgresql+psycopg://USER@HOST/DB (in-memory budgets would be per worker)")
    config = ServeConfig(target=target, policy=policy, provider=provider, tenants=tenants, store=store,
                         ledger=ledger, ledger_prefix=ledger_prefix, owner=owner)
    app = app_from_config(config)  # validates everything here, once
    resumed = app.state.agentroute.resume_unfinished()  # once, here, before any worker takes requests
    if resumed:
        click.echo(f"agentroute serve: resumed {len(resumed)} unfinished task(s): "
                   f"{', '.join(r.task_id for r in resumed)}", err=True)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    app.state.agentroute.close()
    os.environ[ENV_CONFIG] = json.dumps(dataclasses.asdict(config))
    # A worker answers the supervisor's health pings only once its imports let it: on a busy machine that takes
    # longer than uvicorn's 5 s default, and the worker would be killed and restarted over and over.
    uvicorn.run("agentroute.serve._app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, timeout_worker_healthcheck=60)


def register(main: click.Group) -> None:
    """Add ``serve`` to the ``agentroute`` command."""
    main.add_command(serve)
