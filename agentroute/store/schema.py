"""The store's one schema version: created on first use, checked on every opening, upgraded by Alembic.

Every agentroute table (traces, shared budgets and their holds, pheromone colonies) belongs to one schema with
one version (:data:`~agentroute.store.models.SCHEMA_VERSION`), kept in ``agentroute_schema``; Alembic keeps its
revision in ``agentroute_alembic`` (never ``alembic_version``, which may be the user's own). The migrations ship
inside the package (``agentroute/store/migrations``).

* An empty database is created at the current version by whoever opens it first to write (the trace exporter,
  a shared ledger, a pheromone table): the migrations run from the start, under a lock, so a database created
  today is exactly one upgraded from version 1.
* A database of an older version is **not** upgraded silently, since workers of the older version may still
  write to it: opening it raises :class:`SchemaMismatch` naming the command, ``agentroute store upgrade --db URL``
  (:func:`upgrade`), to run once every worker runs the new version. A newer one is refused likewise.

Concurrent creators serialise on a PostgreSQL advisory lock, or on a lock file next to a SQLite database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from agentroute.errors import SchemaMismatch, StoreError
from agentroute.store.engine import ENV_URL, first_line, get_engine, is_checked, mark_checked
from agentroute.store.models import SCHEMA_VERSION

log = logging.getLogger("agentroute.store")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
REVISIONS = {1: "0001", 2: "0002", 3: "0003"}
"""Alembic revision of each schema version."""
_PG_LOCK = 0x61_72_73_74  # an arbitrary advisory-lock key: "arst"


def _found(conn: Connection) -> int:
    """The schema version in the database: -1 when it holds no agentroute table, 0 when it has no version."""
    names = set(inspect(conn).get_table_names())
    if "agentroute_schema" in names:
        row = conn.execute(text("SELECT version FROM agentroute_schema")).first()
        return int(row[0]) if row is not None else 0
    return 0 if any(n.startswith("agentroute_") for n in names) else -1


def current_version(engine: Engine) -> int:
    """The schema version of ``engine``'s database (-1: no agentroute tables; 0: tables without a version)."""
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            return _found(conn)
    except OperationalError as e:
        raise StoreError(f"cannot reach the database {shown}: {first_line(e)}", name=ENV_URL,
                         hint="check the URL, or set AGENTROUTE_DATABASE_URL / --db") from None
    except DBAPIError as e:
        raise StoreError(f"database {shown} failed: {first_line(e)}", name=ENV_URL) from None


def ensure_schema(engine: Engine, *, create: bool = True) -> int:
    """Check (and with ``create``, make) the store's tables; return the schema version.

    Raises :class:`SchemaMismatch` for another version, :class:`StoreError` when the database cannot be
    reached or (``create=False``) holds no agentroute tables.
    """
    if is_checked(engine):
        return SCHEMA_VERSION
    shown = engine.url.render_as_string(hide_password=True)
    found = current_version(engine)
    if found == -1:
        if not create:
            raise StoreError(f"no agentroute traces in {shown}", name=ENV_URL,
                             hint="run a task with tracing on first, or point --db at the right database")
        found = _migrate(engine)[1]
    if found != SCHEMA_VERSION:
        if found < SCHEMA_VERSION:
            todo = (f" Upgrade it once no older worker writes to it: agentroute store upgrade --db '{shown}'"
                    " (copy it first if you may want to go back)")
        else:
            todo = " Use the agentroute that wrote it, or a new database (set AGENTROUTE_DATABASE_URL or --db)"
        what = "an older" if found < SCHEMA_VERSION else "a newer"
        raise SchemaMismatch(
            f"{shown} holds {what} agentroute schema (version {found}; this agentroute uses {SCHEMA_VERSION}).{todo}",
            found=found, expected=SCHEMA_VERSION,
        )
    mark_checked(engine)
    return found


def upgrade(url: str | Engine | None = None) -> tuple[int, int]:
    """Bring a database to the current schema version; return ``(version before, version after)``.

    Idempotent and safe to run from several processes at once. Version-1 databases keep every row: ledger
    moves, tasks and decisions are reshaped in place; the shared-ledger table of version 1 becomes
    ``agentroute_budgets`` (its spend kept, its ownerless reservations dropped).
    """
    engine = url if isinstance(url, Engine) else get_engine(url)
    before, after = _migrate(engine)
    if after != SCHEMA_VERSION:  # pragma: no cover - a migration that does not set the version is a bug
        raise StoreError(f"upgrade ended at version {after}, not {SCHEMA_VERSION}", name="schema")
    mark_checked(engine)
    return before, after


def _migrate(engine: Engine, revision: str | None = None) -> tuple[int, int]:
    """Run the migrations up to ``revision`` (default: the current version's) under the lock."""
    from alembic import command
    from alembic.config import Config

    shown = engine.url.render_as_string(hide_password=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with _file_lock(engine), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            before = _found(conn)
            if before > SCHEMA_VERSION:
                return before, before
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision or REVISIONS[SCHEMA_VERSION])
            after = _found(conn)
    except OperationalError as e:
        raise StoreError(f"cannot reach the database {shown}: {first_line(e)}", name=ENV_URL) from None
    except DBAPIError as e:
        raise StoreError(f"upgrading {shown} failed: {first_line(e)}", name=ENV_URL) from None
    if before != after:
        log.info("agentroute store %s: schema version %s -> %s", shown, before, after)
    return before, after


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.lock`` for SQLite files (PostgreSQL locks in the transaction)."""
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: SQLite's own write lock is all there is
        yield
        return
    with open(f"{db}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


__all__ = ["MIGRATIONS", "REVISIONS", "current_version", "ensure_schema", "upgrade"]
