"""Many concurrent requests on a small tenant budget never overspend any level: in memory, Redis and PostgreSQL.

For the shared ledgers two apps (two "workers", each with its own connections) take the requests together.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from serve_helpers import served, tenants

from agentroute.serve import create_app

YAML = """\
tenants:
  - name: small
    budget: {usd: "0.02"}
    teams:
      - name: a
        budget: {usd: "0.012"}
        keys:
          - {name: a1, key: "sk-small-a1-0001", budget: {usd: "0.008"}}
          - {name: a2, key: "sk-small-a2-0001"}
    keys:
      - {name: t1, key: "sk-small-t1-0001"}
"""
KEYS = {"sk-small-a1-0001": "key:small/a/a1", "sk-small-a2-0001": "key:small/a/a2",
        "sk-small-t1-0001": "key:small/-/t1"}
LIMITS = {"tenant:small": Decimal("0.02"), "team:small/a": Decimal("0.012"), "key:small/a/a1": Decimal("0.008")}


async def _hammer(apps: list[Any], n: int) -> list[tuple[int, str, Decimal]]:
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url=f"http://worker{i}", timeout=120)
               for i, a in enumerate(apps)]
    keys = list(KEYS)

    async def one(i: int) -> tuple[int, str, Decimal]:
        key = keys[i % len(keys)]
        r = await clients[i % len(clients)].post(
            "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
            json={"model": "router/tiers", "messages": [{"role": "user", "content": f"question {i}"}]})
        return r.status_code, key, Decimal(r.headers.get("x-agentroute-spent-usd", "0"))

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        for c in clients:
            await c.aclose()


def _check(apps: list[Any], outcomes: list[tuple[int, str, Decimal]]) -> None:
    levels = apps[0].state.agentroute.levels
    statuses = [s for s, _, _ in outcomes]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses  # the budget ran out during the test
    spent = {path: levels.ledgers[path].backend.totals()[0].usd for path in levels.ledgers}
    reserved = {path: levels.ledgers[path].backend.totals()[1].usd for path in levels.ledgers}
    for path, limit in LIMITS.items():
        assert spent[path] <= limit, (path, spent[path], limit)
    assert all(r == 0 for r in reserved.values())  # every reservation settled
    assert levels.overspent() == []
    # Exact accounting: what the answers say they cost is what every level recorded.
    for key, path in KEYS.items():
        assert sum(c for s, k, c in outcomes if k == key and s == 200) == spent[path]
    assert sum(c for s, _, c in outcomes if s == 200) == spent["tenant:small"]
    assert spent["team:small/a"] == spent["key:small/a/a1"] + spent["key:small/a/a2"]
    assert spent["tenant:small"] > Decimal("0.015")  # it was really used up, not refused early


def _apps(n: int, ledger: str | None, prefix: str) -> list[Any]:
    return [create_app(served(seed=i, realtime=True), tenants=tenants(YAML), ledger=ledger, store="none",
                       ledger_prefix=prefix) for i in range(n)]


async def test_concurrent_requests_never_overspend_in_memory() -> None:
    apps = _apps(1, None, "mem")
    _check(apps, await _hammer(apps, 48))


@pytest.mark.redis
async def test_concurrent_requests_on_two_workers_never_overspend_with_redis(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    apps = _apps(2, redis_url, prefix)
    try:
        _check(apps, await _hammer(apps, 48))
    finally:
        for ledger in apps[0].state.agentroute.levels.ledgers.values():
            ledger.backend.reset(spend=True)
        for a in apps:
            a.state.agentroute.close()


@pytest.mark.postgres
@pytest.mark.slow
async def test_concurrent_requests_on_two_workers_never_overspend_with_postgres(postgres_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    apps = _apps(2, postgres_url, prefix)
    try:
        _check(apps, await _hammer(apps, 48))
    finally:
        levels = apps[0].state.agentroute.levels
        import sqlalchemy as sa

        with levels._engine.begin() as cx:
            for table, col in (("agentroute_budget_holds", "budget"), ("agentroute_budgets", "name")):
                cx.execute(sa.text(f"DELETE FROM {table} WHERE {col} LIKE :p"), {"p": f"{prefix}/%"})
        for a in apps:
            a.state.agentroute.close()
