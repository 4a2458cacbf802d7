"""Merchant console orders: list indexes, and which staff see personal data in clear.

`ix_orders_merchant_created` (merchant_id, created_at, id) serves the keyset pages of the
console's order list and its exports; `ix_orders_merchant_status_created` (merchant_id,
status, created_at, id) serves a status tab's page and the tab counts. Both are scanned
backwards for "newest first". On a large live table, create them CONCURRENTLY by hand
before upgrading (same names), and this migration's IF NOT EXISTS finds them there.

`console_pii_grants` holds the merchant staff an admin allowed to see shoppers' phones and
names in clear (the console and its exports mask them otherwise).

Revision ID: 0024_console_orders
Revises: 0023_console
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_console_orders"
down_revision: str | None = "0023_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_pii_grants",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_console_pii_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_pii_grants")),
    )
    op.create_index(
        "ix_orders_merchant_created",
        "orders",
        ["merchant_id", "created_at", "id"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_orders_merchant_status_created",
        "orders",
        ["merchant_id", "status", "created_at", "id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_orders_merchant_status_created", table_name="orders")
    op.drop_index("ix_orders_merchant_created", table_name="orders")
    op.drop_table("console_pii_grants")
