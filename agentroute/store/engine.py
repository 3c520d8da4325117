"""Where the trace store lives: engines for SQLite (default) and PostgreSQL, and the schema check.

``get_engine(url=None)`` reads ``AGENTROUTE_DATABASE_URL`` and defaults to the SQLite file ``agentroute.db``
in the working directory; a plain path is taken as a SQLite file. Engines are cached per URL, so the exporter
thread and the CLI share a pool. :func:`ensure_schema` creates the tables on first use and refuses a database
whose schema version differs from :data:`~agentroute.store.models.SCHEMA_VERSION`, with a message that says
what to do.

Errors a user can fix (unreachable database, wrong schema, no traces yet) are :class:`StoreError`, a
:class:`~agentroute.errors.ConfigError`, so ``agentroute`` prints one line and exits 2.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import col

from agentroute.errors import SchemaMismatch, StoreError
from agentroute.store.models import SCHEMA_VERSION, TABLES, SchemaInfo, table

ENV_URL = "AGENTROUTE_DATABASE_URL"
DEFAULT_FILE = "agentroute.db"


_engines: dict[str, Engine] = {}
_checked: set[str] = set()
_lock = threading.Lock()


def resolve_url(url: str | None = None, *, hide_password: bool = False) -> str:
    """The database URL to use: ``url``, else ``AGENTROUTE_DATABASE_URL``, else ``sqlite:///./agentroute.db``."""
    raw = url or os.environ.get(ENV_URL) or DEFAULT_FILE
    if "://" not in raw:  # a file path
        raw = f"sqlite:///{Path(raw).expanduser().resolve()}"
    if raw.startswith("postgresql://") or raw.startswith("postgres://"):
        raw = "postgresql+psycopg://" + raw.split("://", 1)[1]  # psycopg 3 is the driver we ship with
    if hide_password:
        try:
            return make_url(raw).render_as_string(hide_password=True)
        except ArgumentError:
            return raw
    return raw


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `agentroute traces` read while a run writes; NORMAL sync is durable across process crashes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def get_engine(url: str | None = None) -> Engine:
    """A (cached) SQLAlchemy engine for ``url`` (see :func:`resolve_url`). Does not connect yet."""
    resolved = resolve_url(url)
    with _lock:
        eng = _engines.get(resolved)
        if eng is not None:
            return eng
        try:
            u = make_url(resolved)
        except ArgumentError:
            raise StoreError(f"not a database URL: {resolved!r}", name=ENV_URL,
                             hint="e.g. sqlite:///runs.db or postgresql+psycopg://user@host/db") from None
        if u.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(f"the trace store runs on SQLite or PostgreSQL, not {u.get_backend_name()!r}",
                             name=ENV_URL, hint="e.g. sqlite:///runs.db or postgresql+psycopg://user@host/db")
        kwargs: dict[str, Any] = {}
        if u.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            eng = create_engine(resolved, **kwargs)
        except (NoSuchModuleError, ImportError) as e:
            raise StoreError(f"no driver for {u.drivername!r}: {e}", name=ENV_URL,
                             hint="for PostgreSQL: pip install 'agentroute[postgres]'") from None
        if u.get_backend_name() == "sqlite":
            event.listen(eng, "connect", _sqlite_pragmas)
        _engines[resolved] = eng
        return eng


def sqlite_path(url: str | None = None) -> Path | None:
    """The file behind a SQLite URL, or ``None`` for other databases and in-memory SQLite."""
    u = make_url(resolve_url(url))
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def ensure_schema(engine: Engine, *, create: bool = True) -> int:
    """Check (and with ``create``, make) the store's tables; return the schema version.

    Raises :class:`SchemaMismatch` for another version, :class:`StoreError` when the database cannot be
    reached or (``create=False``) holds no agentroute tables.
    """
    key = _key(engine)
    if key in _checked:
        return SCHEMA_VERSION
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            ours = {table(t).name for t in TABLES} & names
            if SchemaInfo.__tablename__ in names:
                row = conn.execute(select(col(SchemaInfo.version))).first()
                found = int(row[0]) if row is not None else 0
            else:
                found = 0 if ours else -1
    except OperationalError as e:
        raise StoreError(f"cannot reach the trace database {shown}: {_first_line(e)}", name=ENV_URL,
                         hint="check the URL, or set AGENTROUTE_DATABASE_URL / --db") from None
    except DBAPIError as e:
        raise StoreError(f"trace database {shown} failed: {_first_line(e)}", name=ENV_URL) from None
    if found == -1:
        if not create:
            raise StoreError(f"no agentroute traces in {shown}", name=ENV_URL,
                             hint="run a task with tracing on first, or point --db at the right database")
        _create(engine)
        found = SCHEMA_VERSION
    if found != SCHEMA_VERSION:
        what = "an older" if found < SCHEMA_VERSION else "a newer"
        raise SchemaMismatch(
            f"{shown} holds {what} agentroute trace schema (version {found}; "
            f"this agentroute uses {SCHEMA_VERSION})."
            " Export what you need with the agentroute that wrote it, then use a new database"
            " (set AGENTROUTE_DATABASE_URL or --db) or move the old one aside",
            found=found, expected=SCHEMA_VERSION,
        )
    _checked.add(key)
    return found


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def upsert(engine: Engine, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _create(engine: Engine) -> None:
    tables = [table(t) for t in TABLES]
    with engine.begin() as conn:
        SchemaInfo.metadata.create_all(conn, tables=tables, checkfirst=True)
        stmt = upsert(engine, table(SchemaInfo)).values(
            id=1, version=SCHEMA_VERSION, created_ns=time.time_ns()
        )
        conn.execute(stmt.on_conflict_do_nothing())


def forget(url: str | None = None) -> None:
    """Dispose the cached engine for ``url`` (tests; after dropping a database)."""
    resolved = resolve_url(url)
    with _lock:
        eng = _engines.pop(resolved, None)
    if eng is not None:
        _checked.discard(_key(eng))
        eng.dispose()


__all__ = [
    "DEFAULT_FILE",
    "ENV_URL",
    "SchemaMismatch",
    "StoreError",
    "ensure_schema",
    "forget",
    "get_engine",
    "resolve_url",
    "sqlite_path",
    "upsert",
]
