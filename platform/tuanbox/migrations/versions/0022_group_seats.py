"""Group-buy stock set aside per campaign: a pool on the campaign, a chunk per group.

`gb_campaigns.stock_cap` / `stock_remaining` / `stock_closed_at`: a capped campaign reserves
its cap on the SKU once, when it is created, and gives back what is left when it ends.
`gb_groups.units_held` / `units_taken`: the units a group drew from its campaign's pool and
how many its members hold, so a join updates its group row only (no SKU row lock).
Existing campaigns keep `stock_cap` NULL and reserve from the SKU at each join, as before.

Revision ID: 0022_group_seats
Revises: 0021_flash_reminders
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_group_seats"
down_revision: str | None = "0021_flash_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("gb_campaigns") as batch:
        batch.add_column(sa.Column("stock_cap", _BIG, nullable=True))
        batch.add_column(sa.Column("stock_remaining", _BIG, nullable=True))
        batch.add_column(sa.Column("stock_closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            op.f("ck_gb_campaigns_pool_within"),
            "stock_cap IS NULL OR (stock_remaining >= 0 AND stock_remaining <= stock_cap)",
        )
    with op.batch_alter_table("gb_groups") as batch:
        batch.add_column(sa.Column("units_held", _BIG, server_default="0", nullable=False))
        batch.add_column(sa.Column("units_taken", _BIG, server_default="0", nullable=False))
        batch.create_check_constraint(
            op.f("ck_gb_groups_units_within"), "units_taken >= 0 AND units_taken <= units_held"
        )


def downgrade() -> None:
    with op.batch_alter_table("gb_groups") as batch:
        batch.drop_constraint(op.f("ck_gb_groups_units_within"), type_="check")
        batch.drop_column("units_taken")
        batch.drop_column("units_held")
    with op.batch_alter_table("gb_campaigns") as batch:
        batch.drop_constraint(op.f("ck_gb_campaigns_pool_within"), type_="check")
        batch.drop_column("stock_closed_at")
        batch.drop_column("stock_remaining")
        batch.drop_column("stock_cap")
