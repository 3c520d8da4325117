"""One store, one schema version, a real upgrade path: version-1 databases (as agentroute 0.1 wrote them) upgrade
with every row kept, and one database URL holds traces, shared budgets and pheromones together."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentroute import Budget, policies, providers
from agentroute.budget import Ledger, SharedBudget, Spend
from agentroute.errors import SchemaMismatch
from agentroute.examples import support_graph, support_tasks
from agentroute.ledgers import SqlLedger
from agentroute.policies._pheromone_open import open_table
from agentroute.policies._pheromone_store import EdgeUpdate
from agentroute.store import SCHEMA_VERSION, current_version, ensure_schema, get_engine, upgrade
from agentroute.store.engine import forget
from agentroute.store.models import TABLES, table
from agentroute.store.queries import decision_records, list_tasks, stats, task_tree
from agentroute.store.schema import _migrate
from agentroute.store.tables import BUDGETS, HOLDS, PHEROMONE_EDGES, PHEROMONE_EVENTS, PHEROMONE_META
from agentroute.telemetry import configure_tracing

V1 = json.loads((Path(__file__).parent / "data" / "v1_store.json").read_text())


def _fill_v1(url: str) -> None:
    """A version-1 store holding the rows agentroute 0.1 wrote (recorded from its exporter, in data/)."""
    engine = get_engine(url)
    _migrate(engine, "0001")
    with engine.begin() as conn:
        meta = sa.MetaData()
        for name, rows in V1["rows"].items():
            t = sa.Table(name, meta, autoload_with=conn)
            if name == "agentroute_schema":
                conn.execute(t.update().values(version=1))
                continue
            bools = {c.name for c in t.columns if isinstance(c.type, sa.Boolean)}
            conn.execute(t.insert(), [{k: bool(v) if k in bools and v is not None else v for k, v in r.items()}
                                      for r in rows])
    forget(url)


def test_version_1_as_0_1_wrote_it_is_what_migration_0001_creates(tmp_path):
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    _migrate(get_engine(url), "0001")
    with get_engine(url).connect() as conn:
        ddl = sorted(conn.exec_driver_sql(
            "select sql from sqlite_master where sql is not null and name != 'agentroute_alembic'").scalars())
    assert ddl == sorted(V1["ddl"])


def test_a_version_1_store_is_refused_then_upgraded_with_every_row_kept(store_url):
    _fill_v1(store_url)
    engine = get_engine(store_url)
    assert current_version(engine) == 1
    with pytest.raises(SchemaMismatch, match="agentroute store upgrade"):
        ensure_schema(engine)
    assert upgrade(store_url) == (1, SCHEMA_VERSION)
    assert upgrade(store_url) == (SCHEMA_VERSION, SCHEMA_VERSION)  # idempotent
    forget(store_url)
    engine = get_engine(store_url)
    assert ensure_schema(engine, create=False) == SCHEMA_VERSION
    old_tasks = V1["rows"]["agentroute_tasks"]
    assert {t.task_id for t in list_tasks(engine, limit=100)} == {t["task_id"] for t in old_tasks}
    some = old_tasks[0]
    tree = task_tree(engine, some["task_id"])
    assert len(tree.ledger) == sum(x["task_id"] == some["task_id"] for x in V1["rows"]["agentroute_ledger"])
    assert len(tree.decisions) == sum(x["task_id"] == some["task_id"] for x in V1["rows"]["agentroute_decisions"])
    old_decisions = {(d["task_id"], d["idx"]): d for d in V1["rows"]["agentroute_decisions"]}
    records = list(decision_records(engine))
    assert len(records) == len(old_decisions)
    for rec in records:
        old = old_decisions[(rec.task_id, rec.index)]
        assert rec.chosen == old["chosen"] and rec.propensity == pytest.approx(old["propensity"])
        assert [c.id for c in rec.candidates] == json.loads(old["candidates"])
        assert rec.decided_ns == old["at_ns"] and rec.task["graph"] == "support"
        assert (rec.cost_usd is None) == (old["cost_usd"] is None)
    by_policy = {g["policy"]: g for g in stats(engine)}
    for policy in {t["policy"] for t in old_tasks}:
        mine = [t for t in old_tasks if t["policy"] == policy]
        assert by_policy[policy]["tasks"] == len(mine)
        assert Decimal(by_policy[policy]["spend_usd"]) == sum(Decimal(t["spent_usd"]) for t in mine)
    # the upgraded store takes new traces
    tracing = configure_tracing(exporters="none", store_url=store_url)
    app = support_graph().compile(policy=policies.Cheapest(), provider=providers.Simulated(seed=1),
                                  hooks=tracing.hooks)
    app.run({"question": "why?"}, budget=Budget(usd="0.01"))
    assert tracing.flush()
    tracing.shutdown()
    assert len(list_tasks(engine, limit=100)) == len(old_tasks) + 1


def test_an_old_shared_ledger_database_upgrades_keeping_its_spend(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with get_engine(url).begin() as conn:
        for stmt in V1["shared_ledger"]["ddl"]:
            conn.exec_driver_sql(stmt)
        t = sa.Table("agentroute_ledger", sa.MetaData(), autoload_with=conn)
        conn.execute(t.insert(), V1["shared_ledger"]["rows"])
    with pytest.raises(SchemaMismatch, match="version 0"):
        SqlLedger(url, name="team")
    assert upgrade(url) == (0, SCHEMA_VERSION)
    spent, reserved = SqlLedger(url, name="team").totals()
    assert spent == Spend(usd=Decimal("0.125"), tokens=40, steps=1)
    assert reserved == Spend(usd=Decimal(0))  # the reservation of a 0.1 worker had no owner and no lease


def _traces(url: str) -> str:
    tracing = configure_tracing(exporters="none", store_url=url)
    app = support_graph().compile(policy=policies.Strongest(), provider=providers.Simulated(seed=2),
                                  hooks=tracing.hooks)
    res = app.run({"question": support_tasks(1, seed=2)[0]["question"]}, budget=Budget(usd="0.01"))
    assert tracing.flush()
    tracing.shutdown()
    return res.task_id


def _ledger(url: str) -> SqlLedger:
    backend = SqlLedger(url, name="team")
    r = Ledger(Budget(), parents=[SharedBudget(Budget(usd="1"), backend=backend).ledger]).reserve(
        Spend(usd=Decimal("0.5")))
    r.commit(Spend(usd=Decimal("0.25")))
    return backend


def _pheromones(url: str) -> None:
    t = open_table(url, namespace="colony")
    t.apply([EdgeUpdate(("any", "a.model", "", "small"), 1.0, 0.8)])


@pytest.mark.parametrize("order", ["traces-ledger-pheromones", "ledger-pheromones-traces", "pheromones-traces-ledger"])
def test_one_url_holds_traces_ledgers_and_pheromones_in_any_order(store_url, order):
    steps = {"traces": _traces, "ledger": _ledger, "pheromones": _pheromones}
    out = {name: steps[name](store_url) for name in order.split("-")}
    engine = get_engine(store_url)
    assert task_tree(engine, out["traces"]).task.status == "completed"
    assert out["ledger"].totals()[0].usd == Decimal("0.25")
    assert open_table(store_url, namespace="colony").edges()
    assert current_version(engine) == SCHEMA_VERSION


def test_the_models_match_the_migrated_schema(store_url):
    engine = get_engine(store_url)
    ensure_schema(engine)
    insp = sa.inspect(engine)
    ours = [table(m) for m in TABLES] + [BUDGETS, HOLDS, PHEROMONE_EDGES, PHEROMONE_META, PHEROMONE_EVENTS]
    for t in ours:
        assert {c["name"] for c in insp.get_columns(t.name)} == {c.name for c in t.columns}, t.name
        assert {i["name"] for i in insp.get_indexes(t.name)} >= {i.name for i in t.indexes}, t.name
    names = {n for n in insp.get_table_names() if n.startswith("agentroute_")}
    assert names == {t.name for t in ours} | {"agentroute_alembic"}
