"""Alembic's entry point for agentroute's store: runs the migrations on the connection the store hands over.

Never run by hand with ``alembic``: use ``agentroute store upgrade`` (or :func:`agentroute.store.upgrade`), which
takes the cross-process lock, passes its connection in ``config.attributes["connection"]`` and keeps Alembic's
revision in its own table (``agentroute_alembic``), apart from any ``alembic_version`` of the user's.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table="agentroute_alembic")
with context.begin_transaction():
    context.run_migrations()
