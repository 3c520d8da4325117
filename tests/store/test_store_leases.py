"""Leases on shared ledgers: a killed worker's holds come back within the lease, spend is never touched, settles
count once, limits are exact, and the async twins never block the event loop. Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from store_helpers import drop_schema, private_schema

from agentroute.budget import Budget, Ledger, SharedBudget, Spend
from agentroute.errors import ConfigError, Unaffordable
from agentroute.ledgers import MAX_USD, RedisLedger, SqlLedger

REPO = Path(__file__).resolve().parents[2]
LEASE = 1.5


@pytest.fixture(params=["redis", "sqlite", "postgresql"])
def ledger_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(kind, url)`` of a shared ledger store; each test uses its own budget names."""
    if request.param == "redis":
        yield "redis", request.getfixturevalue("redis_url")
    elif request.param == "sqlite":
        yield "sql", f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        base = request.getfixturevalue("postgres_url")
        url, schema = private_schema(base)
        yield "sql", url
        drop_schema(base, schema)


def make(kind: str, url: str, name: str, lease: float = LEASE) -> RedisLedger | SqlLedger:
    return RedisLedger(url, name=name, lease=lease) if kind == "redis" else SqlLedger(url, name=name, lease=lease)


WORKER = textwrap.dedent("""
    import sys, time
    from decimal import Decimal
    from agentroute.budget import Budget, Ledger, SharedBudget, Spend
    from agentroute.ledgers import RedisLedger, SqlLedger
    kind, url, name, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    cls = RedisLedger if kind == "redis" else SqlLedger
    team = SharedBudget(Budget(usd="1", steps=10), backend=cls(url, name=name, lease=lease))
    led = Ledger(Budget(), parents=[team.ledger])
    r = led.reserve(Spend(usd=Decimal("0.2"), steps=1))
    r.commit(Spend(usd=Decimal("0.1"), steps=1))
    held = led.reserve(Spend(usd=Decimal("0.85"), steps=1), what="a long call")
    print("held", flush=True)
    time.sleep(600)
""")


def test_a_killed_workers_holds_come_back_within_the_lease(ledger_of):
    kind, url = ledger_of
    name = f"lease-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, kind, url, name, str(LEASE)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held", proc.stderr and proc.stderr.read()
        backend = make(kind, url, name)
        team = SharedBudget(Budget(usd="1", steps=10), backend=backend)
        mine = Ledger(Budget(), parents=[team.ledger])
        want = Spend(usd=Decimal("0.5"), steps=1)
        # while its owner lives, the hold outlives many leases: the owner renews it
        until = time.monotonic() + 2.5 * LEASE
        while time.monotonic() < until:
            with pytest.raises(Unaffordable):
                mine.reserve(want)
            time.sleep(0.2)
        (dead,) = backend.holds()
        assert dead["owner"].split(":")[1] == str(proc.pid) and dead["usd"] == Decimal("0.85")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        while True:
            try:
                r = mine.reserve(want)
                break
            except Unaffordable:
                assert time.monotonic() - killed < LEASE + 1.0, "the dead worker's hold was never reclaimed"
                time.sleep(0.05)
        assert time.monotonic() - killed <= LEASE + 1.0
        spent, reserved = backend.totals()
        assert spent == Spend(usd=Decimal("0.1"), steps=1)  # what the dead worker spent stays spent
        assert reserved == Spend(usd=Decimal("0.5"), steps=1)  # only our hold is left
        assert [h["hold"] for h in backend.holds() if h["state"] == "held"] == [r.hold]
        r.commit(Spend(usd=Decimal("0.3"), steps=1))
        assert backend.totals() == (Spend(usd=Decimal("0.4"), steps=2), Spend(usd=Decimal(0)))
        backend.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_settle_counts_once_however_often_it_is_retried(ledger_of):
    kind, url = ledger_of
    backend = make(kind, url, f"once-{uuid.uuid4().hex[:8]}", lease=30)
    led = Ledger(Budget(), parents=[SharedBudget(Budget(usd="1", tokens=1000), backend=backend).ledger])
    r = led.reserve(Spend(usd=Decimal("0.3"), tokens=100))
    actual = Spend(usd=Decimal("0.1"), tokens=40)
    r.commit(actual)
    for _ in range(3):  # the commit's reply was lost: the caller settles again under the same hold
        backend.settle(r.amount, actual, r.hold)
    assert backend.totals() == (Spend(usd=Decimal("0.1"), tokens=40), Spend(usd=Decimal(0)))
    # a late settle of a hold reclaimed meanwhile adds its spend, and gives nothing back twice
    late = led.reserve(Spend(usd=Decimal("0.2"), tokens=10))
    assert backend.reclaim(all_holds=True) == 1
    assert backend.totals()[1] == Spend(usd=Decimal(0))
    late.commit(Spend(usd=Decimal("0.05"), tokens=5))
    late.commit(Spend(usd=Decimal("0.05"), tokens=5))
    assert backend.totals() == (Spend(usd=Decimal("0.15"), tokens=45), Spend(usd=Decimal(0)))
    backend.reset(spend=False)
    assert backend.totals()[0].usd == Decimal("0.15")  # reset keeps the spend unless told otherwise
    backend.reset(spend=True)
    assert backend.totals() == (Spend(usd=Decimal(0)), Spend(usd=Decimal(0)))
    with pytest.raises(TypeError):
        backend.reset()  # type: ignore[call-arg]
    backend.close()


def test_limits_are_exact_and_out_of_range_limits_are_refused(ledger_of):
    kind, url = ledger_of
    backend = make(kind, url, f"exact-{uuid.uuid4().hex[:8]}")
    tight = Budget(usd=Decimal("1.5e-10"))
    assert backend.try_reserve(tight, Spend(usd=Decimal("2e-10"))) == "usd"  # was granted: the limit rounded up
    assert backend.try_reserve(tight, Spend(usd=Decimal("1e-10"))) is None
    backend.reset(spend=True)
    big = Budget(usd=MAX_USD, tokens=10**18)
    assert backend.try_reserve(big, Spend(usd=MAX_USD - Decimal("1e-10"), tokens=10**18 - 1)) is None
    assert backend.try_reserve(big, Spend(usd=Decimal("2e-10"), tokens=1)) == "usd"  # exact at 1e18 units
    assert backend.try_reserve(big, Spend(usd=Decimal("1e-10"), tokens=2)) == "tokens"
    assert backend.try_reserve(big, Spend(usd=Decimal("1e-10"), tokens=1)) is None
    for limit, name in ((Budget(usd="9e8"), "Budget.usd"), (Budget(tokens=10**19), "Budget.tokens")):
        with pytest.raises(ConfigError, match=name) as info:
            SharedBudget(limit, backend=backend)
        assert info.value.name == name
    backend.reset(spend=True)
    backend.close()


def test_the_async_twins_never_block_the_event_loop(ledger_of):
    kind, url = ledger_of
    backend = make(kind, url, f"async-{uuid.uuid4().hex[:8]}")
    team = SharedBudget(Budget(usd="1"), backend=backend)
    loop_thread = threading.current_thread()  # asyncio.run runs its loop on this thread
    called_on: list[threading.Thread] = []
    ticked = threading.Event()
    gate: list[bool] = []

    def spy(name: str):
        fn = getattr(backend, name)

        def call(*args, **kwargs):
            called_on.append(threading.current_thread())
            if name == "totals":
                # a read waits, on its worker thread, until the loop has run on: with the I/O on the loop's own
                # thread it would wait its whole 60 s (no count of ticks that depends on the machine's speed)
                gate.append(ticked.wait(60))
            return fn(*args, **kwargs)

        return call

    for name in ("try_reserve", "settle", "totals"):
        setattr(backend, name, spy(name))  # the async twins hand self.<name> to a worker thread

    async def main() -> list[Decimal]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                if ticks == 50:
                    ticked.set()
                await asyncio.sleep(0)

        async def task(i: int) -> Decimal:
            led = Ledger(Budget(), parents=[team.ledger])
            r = await led.areserve(Spend(usd=Decimal("0.01")))
            await r.acommit(Spend(usd=Decimal("0.005")))
            return (await backend.atotals())[0].usd or Decimal(0)

        t = asyncio.create_task(ticker())
        spent = await asyncio.gather(*(task(i) for i in range(20)))
        stop.set()
        await t
        return list(spent)

    spent = asyncio.run(main())
    assert gate and all(gate)  # the loop kept running while ledger reads waited on their worker threads
    assert len(called_on) >= 3 * 20 and loop_thread not in called_on  # every store call off the loop's thread
    for name in ("try_reserve", "settle", "totals"):
        delattr(backend, name)
    assert backend.totals()[0].usd == Decimal("0.1") and max(spent) == Decimal("0.1")
    backend.reset(spend=True)
    backend.close()


def test_one_reservation_holds_a_chain_of_budgets_in_one_store(ledger_of):
    kind, url = ledger_of
    tag = uuid.uuid4().hex[:8]
    tenant = Ledger(Budget(usd="1"), backend=make(kind, url, f"tenant-{tag}"), track_time=False)
    team = Ledger(Budget(usd="0.5"), parents=[tenant], backend=make(kind, url, f"team-{tag}"), track_time=False)
    task = Ledger(Budget(), parents=[team, tenant])
    r = task.reserve(Spend(usd=Decimal("0.4")))
    assert all(led.backend.holds()[0]["hold"] == r.hold for led in (team, tenant))  # type: ignore[attr-defined]
    with pytest.raises(Unaffordable):
        task.reserve(Spend(usd=Decimal("0.2")))  # the team's limit; nothing stays held on the tenant
    assert tenant.backend.totals()[1].usd == Decimal("0.4")
    r.commit(Spend(usd=Decimal("0.3")))
    for led in (team, tenant):
        assert led.backend.totals() == (Spend(usd=Decimal("0.3")), Spend(usd=Decimal(0)))
        led.backend.reset(spend=True)  # type: ignore[attr-defined]
        led.backend.close()  # type: ignore[attr-defined]
