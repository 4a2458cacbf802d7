"""Accounts: the courier role, run sheets scoped to a merchant.

Adds `courier` to the users' role check, and compartment_bookings.merchant_id (a booking
holds one merchant's orders; its codes go to that merchant's couriers and staff only).

Revision ID: 0010_courier_role
Revises: 0009_bounds
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_courier_role"
down_revision: str | None = "0009_bounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "role IN ('shopper', 'merchant_staff', 'ops', 'admin')"
_NEW = "role IN ('shopper', 'merchant_staff', 'courier', 'ops', 'admin')"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role_known"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role_known"), _NEW)
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.add_column(sa.Column("merchant_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_compartment_bookings_merchant_id_merchants"),
            "merchants",
            ["merchant_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_index(op.f("ix_compartment_bookings_merchant_id"), ["merchant_id"])
    # Earlier bookings get their orders' merchant; one that mixed merchants stays NULL, which
    # only ops (not any merchant's staff or couriers) see on a run sheet.
    op.execute(
        "UPDATE compartment_bookings SET merchant_id = ("
        " SELECT MIN(o.merchant_id) FROM fulfilment_orders f JOIN orders o ON o.id = f.order_id"
        " WHERE f.booking_id = compartment_bookings.id"
        " HAVING COUNT(DISTINCT o.merchant_id) = 1)"
    )


def downgrade() -> None:
    couriers = op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM users WHERE role = 'courier'"))
    if couriers:
        # Turning them into merchant staff would widen what they may do: refuse instead.
        raise RuntimeError(f"{couriers} courier account(s) exist; delete them before downgrading")
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.drop_index(op.f("ix_compartment_bookings_merchant_id"))
        batch.drop_constraint(
            op.f("fk_compartment_bookings_merchant_id_merchants"), type_="foreignkey"
        )
        batch.drop_column("merchant_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role_known"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role_known"), _OLD)
