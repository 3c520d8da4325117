"""Budgets shared across processes: Redis and SQL (PostgreSQL, SQLite) ledgers under concurrent writers."""

import multiprocessing as mp
import random
import uuid
from decimal import Decimal

import pytest

import agentroute as ar
from agentroute.budget import Ledger, Spend, Unaffordable
from agentroute.ledgers import RedisLedger, SqlLedger

LIMIT = ar.Budget(usd="0.50", tokens=40_000, steps=300)


def make_backend(kind, url, name):
    return RedisLedger(url, name=name) if kind == "redis" else SqlLedger(url, name=name)


def hammer(kind, url, name, seed, n):
    """A worker process: reserve, then commit part (or release), as fast as it can."""
    team = ar.SharedBudget(LIMIT, backend=make_backend(kind, url, name))
    led = Ledger(ar.Budget(), parents=[team.ledger])
    rng = random.Random(seed)
    done = 0
    for _ in range(n):
        amount = Spend(usd=Decimal(rng.randint(1, 9000)) / Decimal(10**6), tokens=rng.randint(1, 900), steps=1)
        try:
            r = led.reserve(amount)
        except Unaffordable:
            continue
        if rng.random() < 0.2:
            r.release()
        else:
            r.commit(Spend(usd=amount.usd * Decimal("0.7"), tokens=amount.tokens // 2, steps=1))
            done += 1
    return done


def run_workers(kind, url, processes=3, n=90):
    name = f"test-{uuid.uuid4().hex[:8]}"
    backend = make_backend(kind, url, name)
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        done = sum(pool.starmap(hammer, [(kind, url, name, s, n) for s in range(processes)]))
    spent, reserved = backend.totals()
    backend.reset(spend=True)
    return spent, reserved, done


def check(spent, reserved, done):
    assert reserved.usd == 0 and reserved.tokens == 0 and reserved.steps == 0  # no update lost
    assert spent.usd <= LIMIT.usd and spent.tokens <= LIMIT.tokens and spent.steps <= LIMIT.steps
    assert spent.steps == done  # every commit counted exactly once
    assert spent.usd > LIMIT.usd * Decimal("0.8") or spent.steps > 200  # the budget was really contended


@pytest.mark.slow  # three spawned processes
@pytest.mark.redis
def test_redis_ledger_across_processes(redis_url):
    check(*run_workers("redis", redis_url))


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_ledger_across_processes(postgres_url):
    check(*run_workers("sql", postgres_url))


@pytest.mark.slow
def test_sqlite_ledger_across_processes(tmp_path):
    check(*run_workers("sql", f"sqlite:///{tmp_path / 'ledger.db'}", processes=2, n=120))


def run_app_tasks(url, name, seed):
    from agentroute.examples import support_graph, support_tasks

    team = ar.SharedBudget(ar.Budget(usd="0.03"), backend=RedisLedger(url, name=name))
    app = support_graph().compile(policy=ar.policies.Strongest(), provider=ar.providers.Simulated(seed=seed))
    results = app.batch([{"question": t["question"]} for t in support_tasks(25, seed)], budget=team,
                        concurrency=8)
    return [str(r.spent.usd) for r in results]


@pytest.mark.slow
@pytest.mark.redis
def test_real_tasks_in_many_processes_share_one_redis_budget(redis_url):
    name = f"app-{uuid.uuid4().hex[:8]}"
    with mp.get_context("spawn").Pool(3) as pool:
        per_task = [Decimal(x) for xs in pool.starmap(run_app_tasks, [(redis_url, name, s) for s in range(3)])
                    for x in xs]
    backend = RedisLedger(redis_url, name=name)
    spent, reserved = backend.totals()
    backend.reset(spend=True)
    assert reserved.usd == 0 and spent.usd <= Decimal("0.03")
    assert abs(spent.usd - sum(per_task)) < Decimal("1e-8") * len(per_task)  # rounding up to 1e-10 per entry
    assert spent.usd > Decimal("0.025")  # 75 strong tasks want far more than $0.03: the limit was what stopped them
