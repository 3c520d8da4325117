"""``agentroute store version|upgrade`` and ``agentroute ledgers show|reclaim``."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from click.testing import CliRunner
from test_store_upgrade import _fill_v1

from agentroute.budget import Budget, Ledger, SharedBudget, Spend
from agentroute.cli import main
from agentroute.ledgers import RedisLedger, SqlLedger
from agentroute.store import SCHEMA_VERSION


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_store_version_and_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _fill_v1(url)
    r = run("store", "version", "--db", url)
    assert r.exit_code == 0 and f"version 1; this agentroute uses version {SCHEMA_VERSION}" in r.output
    listed = run("traces", "list", "--db", url)
    assert listed.exit_code == 2 and "agentroute store upgrade" in listed.output
    r = run("store", "upgrade", "--db", url)
    assert r.exit_code == 0 and f"upgraded from version 1 to version {SCHEMA_VERSION}" in r.output
    assert "already at version" in run("store", "upgrade", "--db", url).output
    assert run("traces", "list", "--db", url).exit_code == 0


def _hold(backend) -> None:
    led = Ledger(Budget(), parents=[SharedBudget(Budget(usd="1"), backend=backend).ledger])
    led.reserve(Spend(usd=Decimal("0.25"), tokens=7)).commit(Spend(usd=Decimal("0.125"), tokens=3))
    led.reserve(Spend(usd=Decimal("0.5"), tokens=9), what="still running")


def _check(where: list[str], backend) -> None:
    r = run("ledgers", "show", backend.name, *where, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["spent"]["usd"] == "0.125" and doc["reserved"]["tokens"] == 9
    (hold,) = doc["holds"]
    assert hold["owner"] == backend.owner and Decimal(hold["usd"]) == Decimal("0.5") and hold["expires_in"] > 0
    assert backend.name in run("ledgers", "show", *where).output  # every budget when no name is given
    r = run("ledgers", "reclaim", backend.name, *where)
    assert r.exit_code == 0 and "0 hold(s) reclaimed" in r.output  # its lease still runs
    r = run("ledgers", "reclaim", backend.name, *where, "--all")
    assert r.exit_code == 0 and "1 hold(s) reclaimed" in r.output
    spent, reserved = backend.totals()
    assert spent.usd == Decimal("0.125") and reserved.usd == 0


def test_ledgers_show_and_reclaim_sql(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgers.db'}"
    backend = SqlLedger(url, name=f"team-{uuid.uuid4().hex[:6]}")
    _hold(backend)
    _check(["--db", url], backend)
    backend.close()
    assert run("ledgers", "show", "--db", str(tmp_path / "none.db")).exit_code == 2


def test_ledgers_show_and_reclaim_redis(redis_url):
    backend = RedisLedger(redis_url, name=f"team-{uuid.uuid4().hex[:6]}")
    _hold(backend)
    _check(["--redis", redis_url], backend)
    backend.reset(spend=True)
    backend.close()
