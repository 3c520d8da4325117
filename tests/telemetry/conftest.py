"""Fixtures of the telemetry tests: an in-memory span capture and a trace store on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tel_records import Capture

from agentroute.store.engine import forget


@pytest.fixture()
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.provider.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty trace store: a SQLite file, or a private schema of the test PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'traces.db'}"
        yield url
        forget(url)
        return
    base: str = request.getfixturevalue("postgres_url")
    import psycopg

    schema = f"ar_tel_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base.split('?', 1)[0]}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        forget(url)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
