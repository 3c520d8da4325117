"""``agentroute ledgers``: the shared budgets of a Redis or SQL ledger, their live holds, and reclaiming them.

``show`` lists each budget's spend, what is reserved and every hold (owner, amounts, seconds left on its lease);
``reclaim`` gives back the holds whose lease ran out now (``--all``: every hold, once you know their workers are
gone), instead of waiting for the next reservation that does not fit. Spend is never touched. Only ``click`` is
imported at module level.
"""

from __future__ import annotations

import json
from typing import Any

import click

from agentroute._cli_util import CliError, friendly


class LedgersError(CliError):
    """A problem the user can fix: printed as one line, exit code 2."""


_friendly = friendly(LedgersError, "ledger database error")


def _where(fn: Any) -> Any:
    fn = click.option("--redis", "redis_url", default=None, metavar="URL",
                      help="A Redis ledger (redis://host:port/db) instead of the SQL store.")(fn)
    return click.option("--db", "db", default=None, metavar="URL",
                        help="SQL store URL or SQLite file (default: $AGENTROUTE_DATABASE_URL, else "
                        "./agentroute.db).")(fn)


def _redis_names(url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    names = set()
    for key in client.scan_iter(match="agentroute:ledger:*"):
        name = (key.decode() if isinstance(key, bytes) else key).split(":", 2)[2]
        if not name.endswith((":holds", ":leases", ":done")):
            names.add(name)
    return sorted(names)


def _backend(name: str, db: str | None, redis_url: str | None) -> Any:
    from agentroute.ledgers import RedisLedger, SqlLedger

    if redis_url:
        return RedisLedger(redis_url, name=name)
    from agentroute.store.queries import open_store

    return SqlLedger(db, name=name, engine=open_store(db))


def _names(db: str | None, redis_url: str | None) -> list[str]:
    if redis_url:
        return _redis_names(redis_url)
    from agentroute.store.budgets import budget_names
    from agentroute.store.queries import open_store

    return [n for n, _ in budget_names(open_store(db))]


@click.group("ledgers")
def ledgers() -> None:
    """Shared budgets on Redis or SQL: spend, reservations, and the holds of live (or dead) workers."""


@ledgers.command("show")
@click.argument("name", required=False)
@_where
@click.option("--json", "as_json", is_flag=True, help="One JSON object per budget.")
@_friendly
def show_cmd(name: str | None, db: str | None, redis_url: str | None, as_json: bool) -> None:
    """Spend, reserved amounts and holds of budget NAME (every budget when NAME is left out)."""
    names = [name] if name else _names(db, redis_url)
    if not names:
        raise LedgersError("no shared budget there (pass the URL your SharedBudget uses: --db or --redis)")
    for n in names:
        backend = _backend(n, db, redis_url)
        spent, reserved = backend.totals()
        holds = backend.holds()
        backend.close()
        if as_json:
            click.echo(json.dumps({"name": n, "spent": spent.as_dict(), "reserved": reserved.as_dict(),
                                   "holds": holds}, default=str))
            continue
        click.echo(f"{n}: spent ${spent.usd} {spent.tokens} tokens {spent.steps} steps; "
                   f"reserved ${reserved.usd} {reserved.tokens} tokens {reserved.steps} steps; {len(holds)} hold(s)")
        for h in holds:
            left = h["expires_in"]
            lease = "no lease" if left is None else (f"lease {left:.1f} s" if left > 0 else f"lapsed {-left:.1f} s ago")
            click.echo(f"  {h['hold']}  {h['state']:<9} {h['owner']}  ${h['usd']} {h['tokens']} tokens "
                       f"{h['steps']} steps  {lease}")


@ledgers.command("reclaim")
@click.argument("name")
@_where
@click.option("--all", "all_holds", is_flag=True,
              help="Reclaim every hold, lease or not (only when no worker of this budget is running).")
@_friendly
def reclaim_cmd(name: str, db: str | None, redis_url: str | None, all_holds: bool) -> None:
    """Give back the holds of budget NAME whose lease ran out (their worker died); spend is never touched."""
    backend = _backend(name, db, redis_url)
    n = backend.reclaim(all_holds=all_holds)
    backend.close()
    click.echo(f"{name}: {n} hold(s) reclaimed")


def register(main: click.Group) -> None:
    """Add ``ledgers`` to the command line."""
    main.add_command(ledgers)
