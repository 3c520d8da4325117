"""Schema version 2: one store for traces, shared budgets and pheromones.

* The trace store's ledger moves leave the name ``agentroute_ledger`` (which the shared SQL ledger also used, so
  the two could not share a database) for ``agentroute_ledger_events``, keyed by ``(task_id, span_id, seq)``. A
  database that held the *old shared ledger* under that name has its totals moved to ``agentroute_budgets``
  (reservations of that era had no owner and no lease: they are dropped, what was spent is kept).
* Shared budgets (``agentroute_budgets``) and their leased holds (``agentroute_budget_holds``) join the store, and
  so do the pheromone tables (created here when missing; their columns are unchanged).
* Tasks keep their spend as exact integers too (nano-USD and atto-USD) and decisions their task's graph (and
  the runtime's decision time apart from the span's), with
  covering indexes, so ``traces stats`` aggregates in SQL; model calls are keyed by ``(task_id, span_id)``, so
  every insert is idempotent (a spooled batch can be replayed).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("agentroute.store")
_S, _I, _B, _BOOL, _F = sa.String, sa.Integer, sa.BigInteger, sa.Boolean, sa.Float
_STATS = ("status", "truncated", "reason", "quality", "spent_usd_nano", "spent_usd_atto", "spent_usd_rest")


def _c(name: str, type_: Any, nullable: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable, **kw)


def spend_parts(value: str | None) -> tuple[int | None, int | None, bool]:
    """``(nano, atto, rest)`` of a spend string: ``value == nano/1e9 + atto/1e18 (+ more when rest)``."""
    if value is None:
        return None, None, False
    try:
        d = Decimal(value)
    except InvalidOperation:
        return None, None, False
    with localcontext() as ctx:
        ctx.prec = 80
        scaled = d.scaleb(18)
        whole = int(scaled)  # toward zero; spend is never negative
        rest = scaled != whole
        nano, atto = divmod(whole, 10**9)
    return nano, atto, rest


def _columns(bind: sa.Connection, table: str) -> set[str]:
    insp = sa.inspect(bind)
    return {c["name"] for c in insp.get_columns(table)} if insp.has_table(table) else set()


def _budget_tables() -> None:
    big = [_c(f"{p}_{d}", _B, server_default="0") for p in ("spent", "reserved") for d in ("usd", "tokens", "steps")]
    op.create_table("agentroute_budgets", _c("name", _S(200), primary_key=True), *big,
                    _c("updated_ns", _B, server_default="0"))
    op.create_table(
        "agentroute_budget_holds",
        _c("budget", _S(200), primary_key=True), _c("hold", _S(64), primary_key=True),
        _c("owner", _S(200), server_default=""),
        _c("state", _S(16), server_default="held"),
        *(_c(n, _B, server_default="0") for n in ("usd", "tokens", "steps", "expires_ns", "created_ns", "settled_ns")),
    )  # fmt: skip
    op.create_index("ix_agentroute_budget_holds_lease", "agentroute_budget_holds", ["budget", "state", "expires_ns"])


def _ledger_events(bind: sa.Connection) -> None:
    old = _columns(bind, "agentroute_ledger")
    if "name" in old and "spent_usd" in old:  # the shared SQL ledger of 0.1: keep its spend, in the new table
        rows = bind.execute(sa.text(
            "SELECT name, spent_usd, spent_tokens, spent_steps, reserved_usd, reserved_tokens, reserved_steps "
            "FROM agentroute_ledger")).all()  # fmt: skip
        if rows:
            budgets = sa.table("agentroute_budgets", *(sa.column(n) for n in (
                "name", "spent_usd", "spent_tokens", "spent_steps", "updated_ns")))  # fmt: skip
            now = time.time_ns()
            bind.execute(budgets.insert(), [
                {"name": r[0], "spent_usd": r[1], "spent_tokens": r[2], "spent_steps": r[3], "updated_ns": now}
                for r in rows])  # fmt: skip
            for r in rows:
                if r[4] or r[5] or r[6]:
                    log.warning("shared budget %r: dropping reservations without an owner (usd units %s, "
                                "tokens %s, steps %s); what was spent is kept", r[0], r[4], r[5], r[6])
        op.drop_table("agentroute_ledger")
        old = set()
    if old:  # the trace store's ledger moves
        op.drop_index("ix_agentroute_ledger_task_id", table_name="agentroute_ledger")
        op.rename_table("agentroute_ledger", "agentroute_ledger_events")
        op.add_column("agentroute_ledger_events", _c("span_id", _S, server_default=""))
        op.add_column("agentroute_ledger_events", _c("seq", _I, server_default="0"))
        bind.execute(sa.text("UPDATE agentroute_ledger_events SET seq = id"))  # old rows: unique by their id
    else:
        op.create_table(
            "agentroute_ledger_events",
            _c("id", _I, primary_key=True), _c("task_id", _S), _c("span_id", _S, server_default=""),
            _c("seq", _I, server_default="0"), _c("step", _I, True), _c("op", _S), _c("what", _S),
            _c("usd", _S, True), _c("tokens", _I, True), _c("steps", _I, True), _c("seconds", _F, True),
            _c("at_ns", _B),
        )  # fmt: skip
    op.create_index("ix_agentroute_ledger_events_task_id", "agentroute_ledger_events", ["task_id"])
    op.create_index("ux_agentroute_ledger_events_span_seq", "agentroute_ledger_events", ["task_id", "span_id", "seq"],
                    unique=True)


def _tasks_and_decisions(bind: sa.Connection) -> None:
    op.add_column("agentroute_tasks", _c("spent_usd_nano", _B, True))
    op.add_column("agentroute_tasks", _c("spent_usd_atto", _B, True))
    op.add_column("agentroute_tasks", _c("spent_usd_rest", _BOOL, server_default=sa.false()))
    rows = bind.execute(sa.text("SELECT task_id, spent_usd FROM agentroute_tasks WHERE spent_usd IS NOT NULL")).all()
    if rows:
        t = sa.table("agentroute_tasks", *(sa.column(n) for n in (
            "task_id", "spent_usd_nano", "spent_usd_atto", "spent_usd_rest")))  # fmt: skip
        stmt = t.update().where(t.c.task_id == sa.bindparam("b_id")).values(
            spent_usd_nano=sa.bindparam("b_n"), spent_usd_atto=sa.bindparam("b_a"), spent_usd_rest=sa.bindparam("b_r"))
        params = []
        for task_id, spent in rows:
            n, a, r = spend_parts(spent)
            params.append({"b_id": task_id, "b_n": n, "b_a": a, "b_r": r})
        bind.execute(stmt, params)
    op.add_column("agentroute_decisions", _c("graph", _S, server_default=""))
    op.add_column("agentroute_decisions", _c("decided_ns", _B, server_default="0"))
    bind.execute(sa.text("UPDATE agentroute_decisions SET decided_ns = at_ns"))  # 0.1 placed the span there
    bind.execute(sa.text(
        "UPDATE agentroute_decisions SET graph = (SELECT t.graph FROM agentroute_tasks t "
        "WHERE t.task_id = agentroute_decisions.task_id) "
        "WHERE EXISTS (SELECT 1 FROM agentroute_tasks t WHERE t.task_id = agentroute_decisions.task_id)"))
    for key in ("policy", "graph"):
        op.create_index(f"ix_agentroute_tasks_stats_{key}", "agentroute_tasks", [key, *_STATS])
        op.create_index(f"ix_agentroute_decisions_tiers_{key}", "agentroute_decisions", ["kind", key, "chosen"])
    # one row per call span of a task: drop the duplicates a re-exported batch may have left, then make it a key
    bind.execute(sa.text(
        "DELETE FROM agentroute_model_calls WHERE id NOT IN (SELECT min_id FROM "
        "(SELECT MIN(id) AS min_id FROM agentroute_model_calls GROUP BY task_id, span_id) AS keep)"))
    op.create_index("ux_agentroute_model_calls_span", "agentroute_model_calls", ["task_id", "span_id"], unique=True)


def _pheromone_tables(bind: sa.Connection) -> None:
    insp = sa.inspect(bind)
    if not insp.has_table("agentroute_pheromone"):
        op.create_table(
            "agentroute_pheromone",
            _c("namespace", _S(200), primary_key=True), _c("task_type", _S(200), primary_key=True),
            _c("point", _S(300), primary_key=True), _c("prev", _S(600), primary_key=True),
            _c("option", _S(300), primary_key=True), _c("tau", _F), _c("visits", _F), _c("updates", _I),
            _c("version", _I), _c("updated_at", _F), _c("fast", _F), _c("resets", _I),
        )  # fmt: skip
    if not insp.has_table("agentroute_pheromone_meta"):
        op.create_table(
            "agentroute_pheromone_meta",
            _c("namespace", _S(200), primary_key=True), _c("params", _S), _c("total_updates", _I), _c("decays", _I),
            _c("created_at", _F),
        )  # fmt: skip
    if not insp.has_table("agentroute_pheromone_event"):
        op.create_table(
            "agentroute_pheromone_event",
            _c("id", _I, primary_key=True), _c("namespace", _S(200)), _c("ts", _F), _c("task_id", _S),
            _c("point", _S), _c("option", _S), _c("outcome", _S), _c("quality", _F, True), _c("cost_usd", _F, True),
            _c("signal", _F), _c("weights", _S), _c("reason", _S),
        )  # fmt: skip
        op.create_index("ix_agentroute_pheromone_event_namespace", "agentroute_pheromone_event", ["namespace"])


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    _budget_tables()
    _ledger_events(bind)
    _tasks_and_decisions(bind)
    _pheromone_tables(bind)
    bind.execute(sa.text("UPDATE agentroute_schema SET version = 2"))


def downgrade() -> None:
    """Refuse: the store only moves forward."""
    raise NotImplementedError("agentroute's store is never downgraded: restore a copy taken before the upgrade")
