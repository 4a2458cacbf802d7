"""Flash sales: a shopper's "remind me" before an upcoming sale starts.

`flash_sale_reminders` holds one row per sale and shopper (the key makes a second press a
no-op); `sent_at` is set by the reminder sweep in the transaction that records the notice.

Revision ID: 0021_flash_reminders
Revises: 0020_fulfilment_leftovers
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_flash_reminders"
down_revision: str | None = "0020_fulfilment_leftovers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flash_sale_reminders",
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["flash_sales.id"],
            name=op.f("fk_flash_sale_reminders_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_flash_sale_reminders_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sale_id", "user_id", name=op.f("pk_flash_sale_reminders")),
    )
    op.create_index(op.f("ix_flash_sale_reminders_user_id"), "flash_sale_reminders", ["user_id"])


def downgrade() -> None:
    op.drop_table("flash_sale_reminders")
