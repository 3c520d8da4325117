"""Fixtures of the store tests: a fresh store on SQLite and on PostgreSQL, and a TCP proxy to cut a server off."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_proxy import Proxy

from agentroute.store.engine import forget


def private_schema(base: str) -> tuple[str, str]:
    """A new PostgreSQL schema in the test database: ``(url whose search_path is it, schema name)``."""
    import psycopg

    schema = f"ar_store_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a private schema of the test PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        yield url
        forget(url)
        return
    base: str = request.getfixturevalue("postgres_url")
    url, schema = private_schema(base)
    try:
        yield url
    finally:
        forget(url)
        drop_schema(base, schema)


@pytest.fixture()
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private spool directory for the trace exporter."""
    d = tmp_path / "spool"
    monkeypatch.setenv("AGENTROUTE_SPOOL_DIR", str(d))
    return d


@pytest.fixture()
def pg_proxy(postgres_url: str) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of the test PostgreSQL, and a private schema reached through it."""
    url, schema = private_schema(postgres_url)
    with Proxy("127.0.0.1", 5432) as proxy:
        through = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        try:
            yield proxy, through
        finally:
            forget(through)
            drop_schema(postgres_url, schema)


@pytest.fixture()
def redis_proxy(redis_url: str) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of the test Redis, and the URL of the test database through it."""
    with Proxy("127.0.0.1", 6379) as proxy:
        yield proxy, redis_url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}")
