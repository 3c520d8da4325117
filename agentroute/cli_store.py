"""``agentroute store``: the store's schema version, and upgrading an older database to it.

An older database is never upgraded silently (workers of the older version may still write to it): opening it
says to run ``agentroute store upgrade --db URL`` once they are gone. Only ``click`` is imported at module level.
"""

from __future__ import annotations

import click

from agentroute._cli_util import CliError, friendly


class StoreCliError(CliError):
    """A problem the user can fix: printed as one line, exit code 2."""


_friendly = friendly(StoreCliError, "database error")
_DB = "Store URL or SQLite file (default: $AGENTROUTE_DATABASE_URL, else ./agentroute.db)."


@click.group("store")
def store() -> None:
    """The one database of traces, shared budgets and pheromones: its schema version and upgrades."""


@store.command("version")
@click.option("--db", "db", default=None, metavar="URL", help=_DB)
@_friendly
def version_cmd(db: str | None) -> None:
    """The schema version of the database, and the one this agentroute uses."""
    from agentroute.store import SCHEMA_VERSION, current_version, get_engine, resolve_url

    found = current_version(get_engine(db))
    shown = resolve_url(db, hide_password=True)
    what = {-1: "no agentroute tables", 0: "agentroute tables without a version"}.get(found, f"version {found}")
    click.echo(f"{shown}: {what}; this agentroute uses version {SCHEMA_VERSION}")


@store.command("upgrade")
@click.option("--db", "db", default=None, metavar="URL", help=_DB)
@_friendly
def upgrade_cmd(db: str | None) -> None:
    """Upgrade the database to this agentroute's schema, keeping every row (copy it first to be able to go back)."""
    from agentroute.store import resolve_url, upgrade

    before, after = upgrade(db)
    shown = resolve_url(db, hide_password=True)
    if before == after:
        click.echo(f"{shown}: already at version {after}")
    else:
        start = "empty" if before < 0 else f"version {before}"
        click.echo(f"{shown}: upgraded from {start} to version {after}")


def register(main: click.Group) -> None:
    """Add ``store`` to the command line."""
    main.add_command(store)
