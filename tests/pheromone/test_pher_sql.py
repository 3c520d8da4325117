"""The durable table: SQLite by default, PostgreSQL for many workers; no update lost, restarts resume."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentroute.errors import ConfigError, DataError
from agentroute.policies._pheromone_open import open_table
from agentroute.policies._pheromone_sql import SQLPheromoneTable, read_snapshot
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneParams

K = ("math", "model", "", "big")
K2 = ("math", "model", "route=a", "big")


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pher.db'}"


def _ns() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pher.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def test_apply_matches_in_process_arithmetic(any_url: str) -> None:
    ns = _ns()
    p = PheromoneParams(rho=0.1, tau0=0.6)
    t = SQLPheromoneTable(any_url, namespace=ns, params=p)
    mem = open_table(memory=True, params=p)
    try:
        batch = [EdgeUpdate(K, 1.0, 1.0), EdgeUpdate(K, 0.5, 0.0), EdgeUpdate(K2, 1.0, 0.3), EdgeUpdate(K, 1.0, 0.9)]
        t.apply(batch, events=[{"task_id": "x", "point": "model", "option": "big", "outcome": "applied"}])
        mem.apply(batch)
        for k in (K, K2):
            assert t.level(k) == pytest.approx(mem.level(k))
        assert t.total_updates == 4
        assert [e["task_id"] for e in t.events()] == ["x"]
    finally:
        t.clear()


def test_restarted_worker_resumes_from_the_table(any_url: str) -> None:
    ns = _ns()
    t = SQLPheromoneTable(any_url, namespace=ns, params=PheromoneParams(rho=0.2))
    try:
        t.apply([EdgeUpdate(K, 1.0, 0.0)] * 5)
        level = t.level(K)
        again = SQLPheromoneTable(any_url, namespace=ns)  # params=None: adopt the stored rule
        assert again.params.rho == 0.2
        assert again.level(K) == pytest.approx(level)
        assert again.total_updates == 5
    finally:
        t.clear()


def test_other_params_on_an_existing_colony_is_a_config_error(sqlite_url: str) -> None:
    SQLPheromoneTable(sqlite_url, namespace="c", params=PheromoneParams(rho=0.2))
    with pytest.raises(ConfigError, match=r"rho stored 0\.2"):
        SQLPheromoneTable(sqlite_url, namespace="c", params=PheromoneParams(rho=0.3))


def test_decay_schedule_runs_once_per_period(sqlite_url: str) -> None:
    t = SQLPheromoneTable(sqlite_url, namespace="d", params=PheromoneParams(rho=0.5, decay=0.5, decay_every=4))
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 3)
    assert t.decays == 0
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 6)  # crosses 4 and 8
    assert t.decays == 2
    mem = open_table(memory=True, params=PheromoneParams(rho=0.5, decay=0.5, decay_every=4))
    mem.apply([EdgeUpdate(K, 1.0, 0.0)] * 3)
    mem.apply([EdgeUpdate(K, 1.0, 0.0)] * 6)
    assert t.level(K) == pytest.approx(mem.level(K))


def test_export_read_snapshot_and_restore(sqlite_url: str) -> None:
    t = SQLPheromoneTable(sqlite_url, namespace="e", params=PheromoneParams(rho=0.0))
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 3 + [EdgeUpdate(K2, 1.0, 1.0)])
    snap = read_snapshot(sqlite_url, "e")
    assert snap == {**t.export(), "total_updates": 4}
    other = SQLPheromoneTable(sqlite_url, namespace="f", params=PheromoneParams(rho=0.0))
    other.restore(snap)
    assert other.level(K) == pytest.approx(t.level(K))
    other.restore(snap, mode="merge")
    assert other.edges()[K].visits == pytest.approx(6.0)
    with pytest.raises(DataError, match="no pheromone namespace 'zzz'"):
        read_snapshot(sqlite_url, "zzz")


def test_read_snapshot_of_an_empty_database_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(DataError, match="no pheromone tables"):
        read_snapshot(url, "default")


def _writer(url: str, ns: str, n: int, signal: float, barrier: mp.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    t = SQLPheromoneTable(url, namespace=ns)
    barrier.wait()
    for i in range(0, n, 5):  # small batches interleave with the other writers
        t.apply([EdgeUpdate(K, 1.0, signal), EdgeUpdate(K2, 1.0, signal)] * 5 if i + 5 <= n else [])
    t.apply([])


def _concurrent(url: str, procs: int = 4, n: int = 60) -> None:
    ns = _ns()
    # rho = 0 and no change detection: the level is an order-free running mean
    p = PheromoneParams(rho=0.0, tau0=0.5, tau_min=1e-6, drift_threshold=None)
    t = SQLPheromoneTable(url, namespace=ns, params=p)
    try:
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(procs)
        ps = [ctx.Process(target=_writer, args=(url, ns, n, float(i % 2), barrier)) for i in range(procs)]
        for pr in ps:
            pr.start()
        for pr in ps:
            pr.join(120)
            assert pr.exitcode == 0
        t.refresh()
        total = procs * n * 2  # each batch of 5 holds 2 edges x 5
        ones = sum(1 for i in range(procs) if i % 2) * n * 2
        for k in (K, K2):
            e = t.edges()[k]
            assert e.updates == total // 2, "an update was lost"
            assert e.visits == pytest.approx(total // 2)
            # a lost update would change the mean: (tau0 + successes) / (1 + visits)
            assert e.tau == pytest.approx((0.5 + ones / 2) / (1 + total / 2))
        assert t.total_updates == total
    finally:
        t.clear()


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_processes_lose_no_update_postgres(postgres_url: str) -> None:
    _concurrent(postgres_url)


@pytest.mark.slow
def test_concurrent_processes_lose_no_update_sqlite(sqlite_url: str) -> None:
    _concurrent(sqlite_url, procs=3, n=40)


def test_policies_in_two_processes_share_one_colony_and_a_restart_resumes(sqlite_url: str) -> None:
    from _pher_helpers import obs

    from agentroute.policies.pheromone import PheromonePolicy
    from agentroute.routing import Feedback

    first = PheromonePolicy(store=sqlite_url, namespace="shared", task_types=["x"], rho=0.1, seed=0)
    for i in range(20):
        o = obs(f"t{i}")
        d = first.decide(o)
        first.feedback(Feedback(o, d, None, 0, 0.0, quality=1.0 if d.chosen == "c" else 0.0))
    assert first.flush(10)
    first.close()
    with pytest.raises(ConfigError):
        PheromonePolicy(store=sqlite_url, namespace="shared", task_types=["x"])  # default rho 0.02 != 0.1
    again = PheromonePolicy(store=sqlite_url, namespace="shared", task_types=["x"], params="stored")
    assert again.params.rho == 0.1
    assert again.table.edges() == first.table.edges()
    assert again.table.total_updates == 20
    assert len(again.table.events(100)) == 20  # every update was recorded
    with pytest.raises(ConfigError):
        PheromonePolicy(params="stored")


def test_change_detection_and_reopen_match_in_sql(any_url: str) -> None:
    ns = _ns()
    p = PheromoneParams(rho=0.01, reopen=0.5)
    t = SQLPheromoneTable(any_url, namespace=ns, params=p)
    mem = open_table(memory=True, params=p)
    other = ("math", "model", "", "small")
    try:
        batches = [[EdgeUpdate(other, 1.0, 0.2)] * 30, [EdgeUpdate(K, 1.0, 1.0)] * 150,
                   [EdgeUpdate(K, 1.0, 0.0)] * 5, [EdgeUpdate(K, 1.0, 0.0)] * 5, [EdgeUpdate(K, 1.0, 0.0)] * 5]
        for b in batches:
            t.apply(b)
            mem.apply(b)
        assert t.edges()[K].resets == mem.edges()[K].resets >= 1
        for k in (K, other):
            assert t.level(k) == pytest.approx(mem.level(k))
            assert t.edges()[k].visits == pytest.approx(mem.edges()[k].visits)
    finally:
        t.clear()
