"""Recommendations: per-order markers (counted once, taken back once), shoppers' kept items,
buyers per product, co-occurring product pairs (both ways) and kept orders per station and
day (popularity), all derived from picked-up orders and rebuildable from them.

Revision ID: 0030_recommendations
Revises: 0029_segments_experiments
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_recommendations"
down_revision: str | None = "0029_segments_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rec_orders",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_rec_orders")),
    )
    op.create_table(
        "rec_user_items",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("orders", BIG, nullable=False),
        sa.CheckConstraint("orders > 0", name=op.f("ck_rec_user_items_positive")),
        sa.PrimaryKeyConstraint("user_id", "product_id", name=op.f("pk_rec_user_items")),
    )
    op.create_table(
        "rec_items",
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("buyers", BIG, nullable=False),
        sa.CheckConstraint("buyers >= 0", name=op.f("ck_rec_items_not_negative")),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_rec_items")),
    )
    op.create_table(
        "rec_pairs",
        sa.Column("product_a", sa.String(length=36), nullable=False),
        sa.Column("product_b", sa.String(length=36), nullable=False),
        sa.Column("shoppers", BIG, nullable=False),
        sa.CheckConstraint("shoppers >= 0", name=op.f("ck_rec_pairs_not_negative")),
        sa.PrimaryKeyConstraint("product_a", "product_b", name=op.f("pk_rec_pairs")),
    )
    op.create_table(
        "rec_station_days",
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("orders", BIG, nullable=False),
        sa.CheckConstraint("orders >= 0", name=op.f("ck_rec_station_days_not_negative")),
        sa.PrimaryKeyConstraint(
            "station_id", "day", "product_id", name=op.f("pk_rec_station_days")
        ),
    )
    op.create_index(
        "ix_rec_station_days_station_day", "rec_station_days", ["station_id", "day"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_rec_station_days_station_day", table_name="rec_station_days")
    op.drop_table("rec_station_days")
    op.drop_table("rec_pairs")
    op.drop_table("rec_items")
    op.drop_table("rec_user_items")
    op.drop_table("rec_orders")
