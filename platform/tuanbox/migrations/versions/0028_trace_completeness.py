"""Trace windows keep the anchor's block hash (a later check detects a reorg by it) and
count the reorgs that took their anchor off the chain.

Revision ID: 0028_trace_completeness
Revises: 0027_growth
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_trace_completeness"
down_revision: str | None = "0027_growth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trace_windows") as batch:
        batch.add_column(sa.Column("block_hash", sa.String(66), nullable=True))
        batch.add_column(sa.Column("reorg_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reorged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trace_windows") as batch:
        batch.drop_column("reorged_at")
        batch.drop_column("reorg_count")
        batch.drop_column("block_hash")
