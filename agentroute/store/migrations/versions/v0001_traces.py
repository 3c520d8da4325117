"""Schema version 1: the trace store as agentroute 0.1 wrote it (tasks, steps, decisions, calls, ledger moves).

A frozen copy of those tables, created only where missing: a database that version 1 already filled is left as
it is, and an empty one gets the same tables before version 2 reshapes them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_meta = sa.MetaData()
_S, _I, _B, _BOOL, _F, _T = sa.String, sa.Integer, sa.BigInteger, sa.Boolean, sa.Float, sa.Text


def _c(name: str, type_: object, nullable: bool = False, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, type_, nullable=nullable, **kw)  # type: ignore[arg-type]


SCHEMA = sa.Table("agentroute_schema", _meta, _c("id", _I, primary_key=True), _c("version", _I), _c("created_ns", _B))
TASKS = sa.Table(
    "agentroute_tasks", _meta,
    _c("task_id", _S, primary_key=True), _c("trace_id", _S), _c("graph", _S, index=True), _c("policy", _S, index=True),
    _c("policy_version", _S), _c("status", _S, index=True), _c("truncated", _BOOL), _c("reason", _S, True),
    _c("error_type", _S, True), _c("error", _S, True), _c("shared_budget", _S, True), _c("limit_usd", _S, True),
    _c("limit_tokens", _I, True), _c("limit_steps", _I, True), _c("limit_seconds", _F, True),
    _c("spent_usd", _S, True), _c("spent_tokens", _I, True), _c("spent_steps", _I, True),
    _c("spent_seconds", _F, True), _c("quality", _F, True), _c("steps", _I, True), _c("decisions", _I, True),
    _c("features", _T, True), _c("input", _T, True), _c("started_ns", _B, index=True), _c("ended_ns", _B, True),
)  # fmt: skip
STEPS = sa.Table(
    "agentroute_steps", _meta,
    _c("id", _I, primary_key=True), _c("task_id", _S, index=True), _c("step", _I), _c("agent", _S), _c("span_id", _S),
    _c("cost_usd", _S, True), _c("tokens", _I), _c("error_type", _S, True), _c("started_ns", _B), _c("ended_ns", _B),
    sa.UniqueConstraint("task_id", "step", name="uq_agentroute_steps_task_step"),
)  # fmt: skip
DECISIONS = sa.Table(
    "agentroute_decisions", _meta,
    _c("id", _I, primary_key=True), _c("task_id", _S, index=True), _c("idx", _I), _c("kind", _S), _c("point", _S),
    _c("node", _S), _c("step", _I), _c("chosen", _S), _c("reason", _S), _c("policy", _S), _c("policy_version", _S),
    _c("weights_hash", _S, True), _c("explored", _BOOL), _c("propensity", _F), _c("candidates", _T, True),
    _c("probabilities", _T, True), _c("scores", _T, True), _c("candidate_details", _T, True),
    _c("masked", _T, True), _c("budget_before", _T, True), _c("reservation", _T, True),
    _c("budget_after", _T, True), _c("cost_usd", _S, True), _c("tokens", _I), _c("quality", _F, True),
    _c("evidence", _T, True), _c("at_ns", _B),
    sa.UniqueConstraint("task_id", "idx", name="uq_agentroute_decisions_task_idx"),
)  # fmt: skip
CALLS = sa.Table(
    "agentroute_model_calls", _meta,
    _c("id", _I, primary_key=True), _c("task_id", _S, index=True), _c("step", _I), _c("agent", _S), _c("tier", _S),
    _c("model", _S), _c("provider", _S), _c("attempt", _I), _c("fallback", _BOOL), _c("max_tokens", _I, True),
    _c("timeout", _F, True), _c("input_tokens", _I), _c("output_tokens", _I), _c("cost_usd", _S, True),
    _c("response_model", _S, True), _c("error_type", _S, True), _c("error", _S, True),
    _c("input_messages", _T, True), _c("output_messages", _T, True), _c("span_id", _S), _c("started_ns", _B),
    _c("ended_ns", _B),
)  # fmt: skip
sa.Index("ix_agentroute_calls_task_step", CALLS.c.task_id, CALLS.c.step)
LEDGER = sa.Table(
    "agentroute_ledger", _meta,
    _c("id", _I, primary_key=True), _c("task_id", _S, index=True), _c("step", _I, True), _c("op", _S),
    _c("what", _S), _c("usd", _S, True), _c("tokens", _I, True), _c("steps", _I, True), _c("seconds", _F, True),
    _c("at_ns", _B),
)  # fmt: skip


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    _meta.create_all(bind, checkfirst=True)
    if bind.execute(sa.select(SCHEMA.c.id)).first() is None:
        bind.execute(SCHEMA.insert().values(id=1, version=1, created_ns=time.time_ns()))


def downgrade() -> None:
    """Refuse: the store only moves forward."""
    raise NotImplementedError("agentroute's store is never downgraded: restore a copy taken before the upgrade")
