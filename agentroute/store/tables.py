"""The store's tables besides traces: shared budgets with their leased holds, and pheromone colonies.

Every table of agentroute lives in :mod:`agentroute.store` so one database URL can hold traces, budgets and
pheromones together under one schema version; the code that writes them (:mod:`agentroute.ledgers`,
:mod:`agentroute.policies._pheromone_sql`) imports these definitions and never creates a table itself.

Budget money is an integer count of 1e-10 USD (:data:`USD_UNIT`): exact on every database, and the same unit the
Redis ledger uses.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Column, Index, Table
from sqlmodel import Field, SQLModel

USD_UNIT = Decimal("1e-10")
"""A shared budget's money unit: amounts round up to it, limits down, so a ledger never grants past a limit."""


def _big(default: int = 0, index: bool = False) -> Any:
    return Field(default=default, sa_column=Column(BigInteger, nullable=False, index=index))


class BudgetRow(SQLModel, table=True):
    """A shared budget's totals: what was spent and what live holds reserve (money in 1e-10 USD)."""

    __tablename__: ClassVar[str] = "agentroute_budgets"

    name: str = Field(primary_key=True, max_length=200)
    spent_usd: int = _big()
    reserved_usd: int = _big()
    spent_tokens: int = _big()
    reserved_tokens: int = _big()
    spent_steps: int = _big()
    reserved_steps: int = _big()
    updated_ns: int = _big()


class HoldRow(SQLModel, table=True):
    """One reservation on a shared budget: who holds it and until when (its lease).

    ``state`` is ``held`` while the call runs (its owner renews ``expires_ns``), ``reclaimed`` once a lease ran out
    and another worker gave the amount back to the budget, ``settled`` once its owner committed or released it.
    The row outlives its settlement for a day, so a retried settle is recognised and not counted twice.
    """

    __tablename__: ClassVar[str] = "agentroute_budget_holds"

    budget: str = Field(primary_key=True, max_length=200)
    hold: str = Field(primary_key=True, max_length=64)
    """The reservation's id; one reservation on a chain of budgets holds each of them under the same id."""
    owner: str = Field(default="", max_length=200)
    state: str = Field(default="held", max_length=16)
    usd: int = _big()
    tokens: int = _big()
    steps: int = _big()
    expires_ns: int = _big()
    created_ns: int = _big()
    settled_ns: int = _big()


class PheromoneEdgeRow(SQLModel, table=True):
    """One edge of one colony (namespace): its level τ, weighted visits, update count and row version."""

    __tablename__: ClassVar[str] = "agentroute_pheromone"

    namespace: str = Field(primary_key=True, max_length=200)
    task_type: str = Field(primary_key=True, max_length=200)
    point: str = Field(primary_key=True, max_length=300)
    prev: str = Field(default="", primary_key=True, max_length=600)
    option: str = Field(primary_key=True, max_length=300)
    tau: float
    visits: float = 0.0
    updates: int = 0
    version: int = 0
    updated_at: float = 0.0
    fast: float = 0.0
    resets: int = 0


class PheromoneMetaRow(SQLModel, table=True):
    """Per colony: the update rule's parameters and the global counters that drive the decay schedule."""

    __tablename__: ClassVar[str] = "agentroute_pheromone_meta"

    namespace: str = Field(primary_key=True, max_length=200)
    params: str = ""
    total_updates: int = 0
    decays: int = 0
    created_at: float = 0.0


class PheromoneEventRow(SQLModel, table=True):
    """One outcome the worker handled: ``applied`` (deposited), ``gated`` (evaporation only) or ``discarded``."""

    __tablename__: ClassVar[str] = "agentroute_pheromone_event"

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(index=True, max_length=200)
    ts: float = 0.0
    task_id: str = ""
    point: str = ""
    option: str = ""
    outcome: str = ""
    quality: float | None = None
    cost_usd: float | None = None
    signal: float = 0.0
    weights: str = ""
    reason: str = ""


def _t(model: type[SQLModel]) -> Table:
    t: Table = model.__table__  # type: ignore[attr-defined]
    return t


BUDGETS, HOLDS = _t(BudgetRow), _t(HoldRow)
PHEROMONE_EDGES, PHEROMONE_META, PHEROMONE_EVENTS = _t(PheromoneEdgeRow), _t(PheromoneMetaRow), _t(PheromoneEventRow)
Index("ix_agentroute_budget_holds_lease", HOLDS.c.budget, HOLDS.c.state, HOLDS.c.expires_ns)

__all__ = [
    "BUDGETS",
    "HOLDS",
    "PHEROMONE_EDGES",
    "PHEROMONE_EVENTS",
    "PHEROMONE_META",
    "USD_UNIT",
    "BudgetRow",
    "HoldRow",
    "PheromoneEdgeRow",
    "PheromoneEventRow",
    "PheromoneMetaRow",
]
