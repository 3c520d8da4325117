"""Where the store lives: one engine per database URL, SQLite (default) or PostgreSQL.

``get_engine(url=None)`` reads ``AGENTROUTE_DATABASE_URL`` and defaults to the SQLite file ``agentroute.db``
in the working directory; a plain path is taken as a SQLite file. Engines are kept in one registry keyed by the
resolved URL, so the trace exporter, the shared ledgers, the pheromone tables and the CLI of one process share
one pool per database. The schema is :mod:`agentroute.store.schema`'s business.

Errors a user can fix (unreachable database, wrong schema, no traces yet) are :class:`StoreError`, a
:class:`~agentroute.errors.ConfigError`, so ``agentroute`` prints one line and exits 2.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from agentroute.errors import StoreError

ENV_URL = "AGENTROUTE_DATABASE_URL"
DEFAULT_FILE = "agentroute.db"


_engines: dict[str, Engine] = {}
_checked: set[str] = set()
"""Engines whose schema was found current (see :func:`agentroute.store.schema.ensure_schema`)."""
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
            # a dead server must fail fast (the exporter spools, the ledgers raise LedgerError), never hang
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5})
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


def first_line(e: BaseException) -> str:
    """The first line of a database error (drivers add long hints below it)."""
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def engine_key(engine: Engine) -> str:
    """The registry key of an engine (its full URL)."""
    return engine.url.render_as_string(hide_password=False)


def is_checked(engine: Engine) -> bool:
    """True once the schema of ``engine``'s database was found current in this process."""
    return engine_key(engine) in _checked


def mark_checked(engine: Engine) -> None:
    """Remember that ``engine``'s schema is current (until :func:`forget`)."""
    _checked.add(engine_key(engine))


def upsert(engine: Engine, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def forget(url: str | None = None) -> None:
    """Dispose the cached engine for ``url`` (tests; after dropping a database)."""
    resolved = resolve_url(url)
    with _lock:
        eng = _engines.pop(resolved, None)
    if eng is not None:
        _checked.discard(engine_key(eng))
        eng.dispose()


__all__ = [
    "DEFAULT_FILE",
    "ENV_URL",
    "StoreError",
    "engine_key",
    "first_line",
    "forget",
    "get_engine",
    "is_checked",
    "mark_checked",
    "resolve_url",
    "sqlite_path",
    "upsert",
]
