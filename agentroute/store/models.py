"""The SQL tables of the trace store (SQLModel), and the version of their schema.

One row per task, step, routing decision, model-call attempt and ledger move, all keyed by ``task_id``. Rows
are written by :class:`~agentroute.store.exporter.SqlSpanExporter` from spans, so they hold exactly what the
traces say. Money is an exact decimal *string* (``"0.000125"``), never a float: SQLite has no exact numeric
type, and a sum of floats drifts. A task's spend is also kept as two integers (nano-USD and the atto-USD below
them) so ``traces stats`` sums it exactly in SQL. Times are ``time.time_ns()`` integers. Structured values
(candidates, budget snapshots) are JSON.

Changing a column means a new migration in :mod:`agentroute.store.migrations` and a new
:data:`SCHEMA_VERSION`. There are no foreign keys on purpose: rows of a step may land before the task row's
final update, and a crashed task must leave its finished steps readable. Every insert is idempotent (a unique
key per row), so a batch replayed from the spool after an outage adds nothing twice.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Column, Dialect, Index, Table, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 3
"""The store's schema version (every table: traces, budgets, pheromones); each migration sets the next one."""


class RawJSON(str):
    """A value that already is JSON text (as span attributes carry it): stored as is, never encoded twice."""

    __slots__ = ()


class JSONText(TypeDecorator[Any]):
    """JSON kept as text, the same on SQLite and PostgreSQL; reads back as Python values."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Encode a Python value; pass :class:`RawJSON` through untouched."""
        if value is None:
            return None
        if isinstance(value, RawJSON):
            return str(value)
        return json.dumps(value, default=str, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Decode the stored text."""
        return None if value is None else json.loads(value)


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSONText, nullable=True))


def _big(nullable: bool = False, index: bool = False) -> Any:
    column = Column(BigInteger, nullable=nullable, index=index)
    return Field(default=None if nullable else 0, sa_column=column)


class SchemaInfo(SQLModel, table=True):
    """The schema version of this database (one row)."""

    __tablename__: ClassVar[str] = "agentroute_schema"

    id: int = Field(default=1, primary_key=True)
    version: int
    created_ns: int = _big()


class TaskRow(SQLModel, table=True):
    """One task: limits, final spend, outcome. ``status`` is ``running`` until the task ends."""

    __tablename__: ClassVar[str] = "agentroute_tasks"

    task_id: str = Field(primary_key=True)
    trace_id: str = ""
    graph: str = Field(default="", index=True)
    policy: str = Field(default="", index=True)
    policy_version: str = ""
    status: str = Field(default="running", index=True)
    """``running`` (unfinished: still going, or its process died), ``completed``, ``truncated``, ``error``."""
    truncated: bool = False
    reason: str | None = None
    error_type: str | None = None
    error: str | None = None
    shared_budget: str | None = None
    limit_usd: str | None = None
    limit_tokens: int | None = None
    limit_steps: int | None = None
    limit_seconds: float | None = None
    spent_usd: str | None = None
    spent_tokens: int | None = None
    spent_steps: int | None = None
    spent_seconds: float | None = None
    spent_usd_nano: int | None = _big(nullable=True)
    """``floor(spent_usd * 1e9)``: with :attr:`spent_usd_atto`, the spend as integers SQL can sum exactly."""
    spent_usd_atto: int | None = _big(nullable=True)
    """The next nine digits of the spend, in atto-USD (``0 <= x < 1e9``)."""
    spent_usd_rest: bool = False
    """True when the spend has digits below 1e-18 USD (``stats`` then sums that group's strings instead)."""
    quality: float | None = None
    steps: int | None = None
    decisions: int | None = None
    features: Any = _json()
    input: Any = _json()
    """The task's input state: only when content capture was on."""
    started_ns: int = _big(index=True)
    ended_ns: int | None = _big(nullable=True)


class StepRow(SQLModel, table=True):
    """One agent execution."""

    __tablename__: ClassVar[str] = "agentroute_steps"
    __table_args__ = (UniqueConstraint("task_id", "step", name="uq_agentroute_steps_task_step"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    step: int
    agent: str
    span_id: str = ""
    cost_usd: str | None = None
    tokens: int = 0
    error_type: str | None = None
    started_ns: int = _big()
    ended_ns: int = _big()


class DecisionRow(SQLModel, table=True):
    """One routing decision: what could be chosen, with which probability, what was chosen and why."""

    __tablename__: ClassVar[str] = "agentroute_decisions"
    __table_args__ = (UniqueConstraint("task_id", "idx", name="uq_agentroute_decisions_task_idx"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    idx: int
    kind: str
    point: str
    node: str
    step: int
    chosen: str
    reason: str = ""
    graph: str = ""
    """The task's graph (copied from the task, so ``stats --by graph`` needs no join)."""
    policy: str = ""
    policy_version: str = ""
    weights_hash: str | None = None
    explored: bool = False
    propensity: float = 0.0
    candidates: Any = _json()
    """Ids of the affordable candidates, cheapest first."""
    probabilities: Any = _json()
    """Probability of each candidate, aligned with ``candidates``."""
    scores: Any = _json()
    candidate_details: Any = _json()
    masked: Any = _json()
    """``[{"id": ..., "reason": ...}]`` for the candidates the budget ruled out."""
    budget_before: Any = _json()
    reservation: Any = _json()
    budget_after: Any = _json()
    cost_usd: str | None = None
    tokens: int = 0
    quality: float | None = None
    evidence: Any = _json()
    decided_ns: int = _big()
    """When the policy decided, as the runtime stamped it (0: not stamped)."""
    shadow: Any = _json()
    """What each shadow policy would have chosen, by name (``{"chosen": ..., "probabilities": {...}}``)."""
    at_ns: int = _big()
    """When the decision's span was placed (``decided_ns``, else when the record arrived)."""


class CallRow(SQLModel, table=True):
    """One model-call attempt (retries and fallbacks each get a row; ``(task_id, span_id)`` is unique)."""

    __tablename__: ClassVar[str] = "agentroute_model_calls"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    step: int
    agent: str = ""
    tier: str = ""
    model: str = ""
    provider: str = ""
    attempt: int = 1
    fallback: bool = False
    max_tokens: int | None = None
    timeout: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: str | None = None
    response_model: str | None = None
    error_type: str | None = None
    error: str | None = None
    input_messages: Any = _json()
    output_messages: Any = _json()
    span_id: str = ""
    started_ns: int = _big()
    ended_ns: int = _big()


class LedgerRow(SQLModel, table=True):
    """One move on a task's ledger: ``reserve``, ``commit`` or ``release`` (``step`` NULL between steps).

    ``(task_id, span_id, seq)`` is unique: the span that carried the move as its ``seq``-th event.
    """

    __tablename__: ClassVar[str] = "agentroute_ledger_events"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    span_id: str = ""
    seq: int = 0
    step: int | None = None
    op: str
    what: str = ""
    usd: str | None = None
    tokens: int | None = None
    steps: int | None = None
    seconds: float | None = None
    at_ns: int = _big()


def table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy ``Table`` behind a table model."""
    t: Table = model.__table__  # type: ignore[attr-defined]
    return t


TABLES = (SchemaInfo, TaskRow, StepRow, DecisionRow, CallRow, LedgerRow)
"""The trace tables (budgets and pheromones are in :mod:`agentroute.store.tables`)."""

_T, _D = table(TaskRow), table(DecisionRow)
Index("ix_agentroute_calls_task_step", table(CallRow).c.task_id, table(CallRow).c.step)
# task-scoped keys: span ids come from `random`, which a user may seed, so only (task, span) is surely unique
Index("ux_agentroute_model_calls_span", table(CallRow).c.task_id, table(CallRow).c.span_id, unique=True)
Index("ux_agentroute_ledger_events_span_seq", table(LedgerRow).c.task_id, table(LedgerRow).c.span_id,
      table(LedgerRow).c.seq, unique=True)
# `traces stats` reads only these indexes (covering): one ordered scan per grouping, no table access on SQLite.
STATS_COLUMNS = ("status", "truncated", "reason", "quality", "spent_usd_nano", "spent_usd_atto", "spent_usd_rest")
for _key in ("policy", "graph"):
    Index(f"ix_agentroute_tasks_stats_{_key}", _T.c[_key], *(_T.c[c] for c in STATS_COLUMNS))
    Index(f"ix_agentroute_decisions_tiers_{_key}", _D.c.kind, _D.c[_key], _D.c.chosen)

__all__ = [
    "SCHEMA_VERSION",
    "STATS_COLUMNS",
    "TABLES",
    "CallRow",
    "DecisionRow",
    "JSONText",
    "LedgerRow",
    "RawJSON",
    "SchemaInfo",
    "StepRow",
    "TaskRow",
    "table",
]
