"""Payments: real provider (WeChat Pay v3), refunds that fail for good.

Revision ID: 0011_payments_hardening
Revises: 0010_courier_role
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_payments_hardening"
down_revision: str | None = "0010_courier_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('pending', 'succeeded', 'failed')"
_NEW = "status IN ('pending', 'succeeded', 'failed', 'resolved')"


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolution_note", sa.String(length=500), nullable=True))
        batch.drop_constraint(op.f("ck_refunds_status_known"), type_="check")
        batch.create_check_constraint("status_known", _NEW)


def downgrade() -> None:
    op.execute("UPDATE refunds SET status = 'succeeded' WHERE status = 'resolved'")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_status_known"), type_="check")
        batch.create_check_constraint("status_known", _OLD)
        batch.drop_column("resolution_note")
        batch.drop_column("resolved_at")
        batch.drop_column("resolved_by")
