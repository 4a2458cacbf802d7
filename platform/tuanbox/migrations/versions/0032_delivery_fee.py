"""Delivery fee on each order: `orders.delivery_fee_cents` (BIGINT cents, 0 when waived),
decided when the order is created (`tuanbox.membership.pricing`) and paid on top of the
goods (`total_cents - discount_cents + delivery_fee_cents`). Existing orders carry none.

Revision ID: 0032_delivery_fee
Revises: 0031_courier_codes
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032_delivery_fee"
down_revision: str | None = "0031_courier_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("delivery_fee_cents", _BIG, server_default="0", nullable=False))
        batch.create_check_constraint(
            op.f("ck_orders_delivery_fee_nonnegative"), "delivery_fee_cents >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_delivery_fee_nonnegative"), type_="check")
        batch.drop_column("delivery_fee_cents")
