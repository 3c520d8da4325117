"""The one store: every agentroute table (traces, shared budgets, pheromones) in one SQL database.

``get_engine()`` opens ``AGENTROUTE_DATABASE_URL`` or ``./agentroute.db`` (one engine per URL, shared by the whole
process); :func:`ensure_schema` creates the tables at the current :data:`SCHEMA_VERSION` or refuses another one,
and :func:`upgrade` (``agentroute store upgrade``) migrates an older database with Alembic.
:class:`SqlSpanExporter` writes spans as rows; :mod:`agentroute.store.queries` reads them back for
``agentroute traces``, decisions as :class:`~agentroute.routing.DecisionRecord`. :class:`SqlCheckpointer` keeps
LangGraph checkpoints in the same database, so tasks resume after a crash. This package imports SQLAlchemy
and the OpenTelemetry SDK, so ``agentroute/__init__.py`` must not import it eagerly.
"""

from agentroute.errors import SchemaMismatch, StoreError
from agentroute.store.checkpoints import SqlCheckpointer
from agentroute.store.engine import get_engine, resolve_url
from agentroute.store.exporter import FlushReport, SqlSpanExporter, SqlSpanProcessor
from agentroute.store.models import (
    SCHEMA_VERSION,
    CallRow,
    DecisionRow,
    LedgerRow,
    SchemaInfo,
    StepRow,
    TaskRow,
)
from agentroute.store.schema import current_version, ensure_schema, upgrade

__all__ = [
    "SCHEMA_VERSION",
    "CallRow",
    "DecisionRow",
    "FlushReport",
    "LedgerRow",
    "SchemaInfo",
    "SchemaMismatch",
    "SqlCheckpointer",
    "SqlSpanExporter",
    "SqlSpanProcessor",
    "StepRow",
    "StoreError",
    "TaskRow",
    "current_version",
    "ensure_schema",
    "get_engine",
    "resolve_url",
    "upgrade",
]
