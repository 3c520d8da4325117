"""``agentroute traces``: recent tasks, one task's decision tree, decision-record exports, statistics.

Reads the SQL trace store (``--db URL``, else ``AGENTROUTE_DATABASE_URL``, else ``./agentroute.db``) and never
writes to it. A user error (unknown task id, unreachable database, a database of another schema) prints one
line and exits 2. Only ``click`` is imported at module level, so ``agentroute --help`` stays fast; rich,
SQLAlchemy and pyarrow load inside the commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from agentroute._cli_util import CliError, friendly

F = TypeVar("F", bound=Callable[..., Any])

_DB_HELP = "Trace database URL or SQLite file (default: $AGENTROUTE_DATABASE_URL, else ./agentroute.db)."


class TracesError(CliError):
    """A problem the user can fix: printed as one line, exit code 2."""


_friendly = friendly(TracesError, "trace database error")


def _db_option(fn: F) -> F:
    return click.option("--db", "db", default=None, metavar="URL", help=_DB_HELP)(fn)


@click.group("traces")
def traces() -> None:
    """Look at recorded tasks and decisions, and export them for evaluation and training."""


def _console() -> Any:
    from rich.console import Console

    # Piped output keeps whole values instead of squeezing columns into an 80-character default.
    return Console(width=None if sys.stdout.isatty() else 200)


def _money(v: Any, digits: int = 6) -> str:
    if v is None:
        return "?"
    from decimal import Decimal

    d = Decimal(str(v))
    return f"${d:.{digits}f}"


def _ago(ns: int | None) -> str:
    import datetime as dt

    if not ns:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


@traces.command("list")
@_db_option
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1), help="How many tasks.")
@click.option("--graph", default=None, help="Only tasks of this graph.")
@click.option("--policy", default=None,
              help="Only tasks run under this policy or its family (learned matches learned:maskable_ppo).")
@click.option("--status", type=click.Choice(["running", "completed", "truncated", "overrun", "error"]), default=None,
              help="Only tasks with this status (overrun: a call spent past its worst case; see the result's "
                   "violations).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@_friendly
def list_cmd(db: str | None, limit: int, graph: str | None, policy: str | None, status: str | None,
             as_json: bool) -> None:
    """Recent tasks: id, graph, policy, spend, and whether they were truncated (running = unfinished)."""
    from agentroute.store.queries import list_tasks, open_store

    rows = list_tasks(open_store(db), limit=limit, graph=graph, policy=policy, status=status)
    if as_json:
        for t in rows:
            click.echo(json.dumps(t.model_dump(exclude={"input"}), default=str))
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} most recent task(s)")
    for name in ("task", "started", "graph", "policy", "status", "steps", "spent $", "limit $", "tokens",
                 "reason", "quality"):
        table.add_column(name, justify="right" if name in ("steps", "spent $", "limit $", "tokens", "quality")
                         else "left", no_wrap=name in ("task", "started"))
    for t in rows:
        style = {"running": "yellow", "error": "red", "truncated": "magenta", "overrun": "bold red"}.get(t.status, "")
        table.add_row(
            t.task_id[:12], _ago(t.started_ns), t.graph, f"{t.policy} v{t.policy_version}",
            f"[{style}]{t.status}[/]" if style else t.status, "-" if t.steps is None else str(t.steps),
            _money(t.spent_usd) if t.ended_ns else "-", _money(t.limit_usd, 4) if t.limit_usd else "∞",
            "-" if t.spent_tokens is None else str(t.spent_tokens), t.reason or "",
            "-" if t.quality is None else f"{t.quality:.3f}",
        )
    _console().print(table)


@traces.command("show")
@click.argument("task_id")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="The task and all its rows as one JSON document.")
@_friendly
def show_cmd(task_id: str, db: str | None, as_json: bool) -> None:
    """A task as a tree: each step with its decisions (candidates, probabilities, choice), calls, budget left.

    TASK_ID may be a unique prefix of the id.
    """
    from agentroute.store.queries import open_store, task_tree

    tree = task_tree(open_store(db), task_id)
    if as_json:
        doc = {
            "task": tree.task.model_dump(),
            "steps": [s.model_dump() for s in tree.steps],
            "decisions": [d.model_dump() for d in tree.decisions],
            "calls": [c.model_dump() for c in tree.calls],
            "ledger": [x.model_dump() for x in tree.ledger],
        }
        click.echo(json.dumps(doc, default=str, indent=2))
        return
    from agentroute._telemetry_render import render_tree

    _console().print(render_tree(tree))


@traces.command("export")
@_db_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--policy", default=None,
              help="Only decisions of tasks run under this policy or its family (learned matches learned:ppo).")
@click.option("--graph", default=None, help="Only decisions of this graph.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly
def export_cmd(
    db: str | None, fmt: str, out: str, policy: str | None, graph: str | None, quiet: bool
) -> None:
    """One row per decision: task features, candidates, propensities, chosen, outcome and cost.

    The input of off-policy evaluation and of training. Money is an exact decimal string; in Parquet, mapping
    columns (features, scores, masked, budget snapshots, text) are JSON strings.
    """
    from agentroute._telemetry_render import write_export
    from agentroute.store.queries import count_decisions, decision_records, open_store

    engine = open_store(db)
    total = count_decisions(engine, policy=policy, graph=graph)
    show = not quiet and sys.stderr.isatty()
    rows = decision_records(engine, policy=policy, graph=graph)
    n = write_export(rows, out, fmt, total=total, progress=show)
    click.echo(f"wrote {n} decision record(s) to {out}", err=True)


@traces.command("stats")
@_db_option
@click.option("--by", type=click.Choice(["policy", "graph"]), default="policy", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group.")
@_friendly
def stats_cmd(db: str | None, by: str, as_json: bool) -> None:
    """Spend and quality per policy (or graph), the model-tier mix and how often budgets ran out."""
    from agentroute.store.queries import open_store, stats

    groups = stats(open_store(db), by=by)
    if as_json:
        for g in groups:
            click.echo(json.dumps(g, default=str))
        return
    from rich.table import Table

    table = Table(title=f"tasks by {by}")
    for name in (by, "tasks", "completed", "truncated", "error", "running", "total $", "mean $",
                 "mean quality", "budget exhausted", "tier mix"):
        table.add_column(name, justify="left" if name in (by, "tier mix") else "right")
    for g in groups:
        table.add_row(
            g[by], *(str(g[k]) for k in ("tasks", "completed", "truncated", "error", "running")),
            _money(g["spend_usd"]), _money(g["mean_spend_usd"]),
            "-" if g["mean_quality"] is None else f"{g['mean_quality']:.3f}",
            "-" if g["exhaustion_rate"] is None else f"{g['exhaustion_rate']:.0%}",
            " · ".join(f"{k} {v:.0%}" for k, v in g["tier_mix"].items()) or "-",
        )
    _console().print(table)


def register(main: click.Group) -> None:
    """Add ``traces`` to the command line."""
    main.add_command(traces)
