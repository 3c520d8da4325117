"""Fixtures shared by every test: no network, the real data folder, PostgreSQL and Redis (skip or fail in CI)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
# No network here: LiteLLM's token counter for llama/cohere models would ask the Hugging Face Hub for a tokenizer, and
# the hub client retries a refused connection 5 times with backoff (23 s of sleeping) on every count before LiteLLM
# falls back to tiktoken; offline, it falls back at once. Subprocesses (CLI, docs pages) inherit it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agentroute.testing import no_network

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parent.parent

# No hypothesis deadlines anywhere: on a loaded, shared machine one slow example is not a bug (speed belongs in
# benchmarks/). Examples are derandomized, so two runs of the suite try the same examples;
# `HYPOTHESIS_PROFILE=explore` searches afresh (and keeps failures in the example database).
settings.register_profile("agentroute", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", parent=settings.get_profile("agentroute"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "agentroute")


@pytest.fixture(autouse=True)
def _guard_network() -> Iterator[None]:
    """A test can never reach a real provider: connections off this machine are refused."""
    with no_network():
        yield


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip with a reason when a service is missing; fail in CI, where it must be there."""
    if not _reachable(host, port):
        msg = f"{name} is not reachable at {host}:{port}"
        if IN_CI:
            pytest.fail(f"{msg}, and CI=true requires it")
        pytest.skip(msg)


@pytest.fixture()
def dead_port() -> Iterator[int]:
    """A local port where nothing listens, for the whole test: connections to it are refused.

    The socket stays bound here and never listens. Closing it and handing the number on would be a race: another
    test (a pytest-xdist worker) could be given the port for a server meanwhile.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real routing-outcome tables (../shared/data or AGENTROUTE_DATA_DIR)."""
    d = Path(os.environ.get("AGENTROUTE_DATA_DIR", REPO.parent / "shared" / "data"))
    if not d.is_dir():
        if IN_CI:
            pytest.fail(f"data folder {d} is missing")
        pytest.skip(f"data folder {d} is missing")
    return d


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of the test PostgreSQL database whose search_path is a fresh schema of this test's own.

    The test database outlives every run (CI uses the machine as the last session left it), so tables an older
    agentroute wrote there, or another run's tables, must never be seen. A schema per test, not per session: tests
    that share one see each other's tables (pheromone or checkpoint tables without the store's version row read as
    an older store schema), which made a result depend on the order tests ran in, and so on how pytest-xdist
    shared them out among its workers. Dropped at the end.
    """
    import uuid

    import psycopg

    base = os.environ.get("AGENTROUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    need_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"agentroute_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        from agentroute.store.engine import forget

        forget(url)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture()
def redis_url() -> str:
    """URL of the test Redis."""
    need_service("Redis", "127.0.0.1", 6379)
    return os.environ.get("AGENTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
