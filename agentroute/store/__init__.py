"""The SQL trace store: SQLModel tables, engines for SQLite and PostgreSQL, and the span exporter filling it.

``get_engine()`` opens ``AGENTROUTE_DATABASE_URL`` or ``./agentroute.db``; :class:`SqlSpanExporter` writes
spans as rows; :mod:`agentroute.store.queries` reads them back for ``agentroute traces``. This package imports
SQLAlchemy and the OpenTelemetry SDK, so ``agentroute/__init__.py`` must not import it eagerly.
"""

from agentroute.store.engine import SchemaMismatch, StoreError, ensure_schema, get_engine, resolve_url
from agentroute.store.exporter import SqlSpanExporter, SqlSpanProcessor
from agentroute.store.models import (
    SCHEMA_VERSION,
    CallRow,
    DecisionRow,
    LedgerRow,
    SchemaInfo,
    StepRow,
    TaskRow,
)

__all__ = [
    "SCHEMA_VERSION",
    "CallRow",
    "DecisionRow",
    "LedgerRow",
    "SchemaInfo",
    "SchemaMismatch",
    "SqlSpanExporter",
    "SqlSpanProcessor",
    "StepRow",
    "StoreError",
    "TaskRow",
    "ensure_schema",
    "get_engine",
    "resolve_url",
]
