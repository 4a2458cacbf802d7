"""Fulfilment: orders bigger than one compartment are split across several bookings.

Every booking of a split order points at the first (``lead_booking_id``, the lead itself
included); the lead lists the other parts' compartments its one pickup QR opens, in order
(``more_compartments``).

Revision ID: 0020_fulfilment_leftovers
Revises: 0019_shop_orders
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_fulfilment_leftovers"
down_revision: str | None = "0019_shop_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.add_column(sa.Column("lead_booking_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("more_compartments", sa.JSON(), nullable=True))
        batch.create_foreign_key(
            "fk_compartment_bookings_lead_booking_id_compartment_bookings",
            "compartment_bookings",
            ["lead_booking_id"],
            ["id"],
        )
        batch.create_index("ix_compartment_bookings_lead_booking_id", ["lead_booking_id"])


def downgrade() -> None:
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.drop_index("ix_compartment_bookings_lead_booking_id")
        batch.drop_constraint(
            "fk_compartment_bookings_lead_booking_id_compartment_bookings", type_="foreignkey"
        )
        batch.drop_column("more_compartments")
        batch.drop_column("lead_booking_id")
