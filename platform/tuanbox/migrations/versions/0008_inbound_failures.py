"""Dispatch: inbound_failures, the failure counts and dead letters of inbound MQTT messages.

Revision ID: 0008_inbound_failures
Revises: 0007_flash_sale_close
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_inbound_failures"
down_revision: str | None = "0007_flash_sale_close"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_inbound_failures")),
    )
    op.create_index(
        op.f("ix_inbound_failures_locker_id"), "inbound_failures", ["locker_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_failures_locker_id"), table_name="inbound_failures")
    op.drop_table("inbound_failures")
