"""Schema version 3: a decision keeps what its shadow policies would have chosen (``shadow``, JSON, nullable).

Rows written before have none (``NULL``): they were made without shadows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    cols = {c["name"] for c in sa.inspect(bind).get_columns("agentroute_decisions")}
    if "shadow" not in cols:
        op.add_column("agentroute_decisions", sa.Column("shadow", sa.Text(), nullable=True))
    bind.execute(sa.text("UPDATE agentroute_schema SET version = 3"))


def downgrade() -> None:
    """Refuse: the store only moves forward."""
    raise NotImplementedError("agentroute's store is never downgraded: restore a copy taken before the upgrade")
