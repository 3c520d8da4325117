"""Fixtures of the store tests: a fresh store on SQLite and on PostgreSQL, and a TCP proxy to cut a server off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import Proxy, drop_schema, private_schema

from agentroute.store.engine import forget


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
