"""Reports: daily rollups, first-purchase days, batched campaign page views, the watermark.

`report_daily` (merchant, local day, campaign → order, money and group counts) and
`report_daily_stations` (the same per pickup station),
`report_daily_buyers` (new and repeat buyers per station), `report_buyer_first` (a shopper's
first paid day per merchant), `report_campaign_views` (page views flushed from Redis),
`report_view_batches` (flushed batch ids, so a retried flush never counts twice) and
`report_watermarks`; `report_monthly_stations` (the station and buyer rows of a month summed:
the dashboard reads whole months of long ranges there). Indexes: orders and groups by `updated_at` (the incremental refresh)
and groups by `created_at` (recomputing a day; its orders are read through 0024's
(merchant_id, created_at) index).

Revision ID: 0025_reports
Revises: 0024_console_orders
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_reports"
down_revision: str | None = "0024_console_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counts(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(name, _big(), nullable=False) for name in names]


def upgrade() -> None:
    for table, key in (("report_daily", "campaign_id"), ("report_daily_stations", "station_id")):
        op.create_table(
            table,
            sa.Column("merchant_id", sa.String(length=36), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column(key, sa.String(length=36), nullable=False),
            *_counts(
                "orders",
                "paid_orders",
                "gmv_cents",
                "picked_up",
                "refunded_orders",
                "refund_cents",
                "groups_opened",
                "groups_succeeded",
                "groups_failed",
            ),
            sa.CheckConstraint(
                "orders >= 0 AND paid_orders >= 0 AND picked_up >= 0 AND refunded_orders >= 0"
                " AND gmv_cents >= 0 AND refund_cents >= 0 AND groups_opened >= 0"
                " AND groups_succeeded >= 0 AND groups_failed >= 0",
                name=op.f(f"ck_{table}_counts_nonnegative"),
            ),
            sa.PrimaryKeyConstraint("merchant_id", "day", key, name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "report_daily_buyers",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        *_counts("new_buyers", "repeat_buyers"),
        sa.CheckConstraint(
            "new_buyers >= 0 AND repeat_buyers >= 0",
            name=op.f("ck_report_daily_buyers_counts_nonnegative"),
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "day", "station_id", name=op.f("pk_report_daily_buyers")
        ),
    )
    op.create_table(
        "report_monthly_stations",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        *_counts(
            "orders",
            "paid_orders",
            "gmv_cents",
            "picked_up",
            "refunded_orders",
            "refund_cents",
            "groups_opened",
            "groups_succeeded",
            "groups_failed",
            "new_buyers",
            "repeat_buyers",
            "station_days",
            "buyer_days",
        ),
        sa.CheckConstraint(
            "orders >= 0 AND paid_orders >= 0 AND picked_up >= 0 AND refunded_orders >= 0"
            " AND gmv_cents >= 0 AND refund_cents >= 0 AND groups_opened >= 0"
            " AND groups_succeeded >= 0 AND groups_failed >= 0",
            name=op.f("ck_report_monthly_stations_counts_nonnegative"),
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "month", "station_id", name=op.f("pk_report_monthly_stations")
        ),
    )
    op.create_table(
        "report_buyer_first",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "user_id", name=op.f("pk_report_buyer_first")),
    )
    op.create_table(
        "report_campaign_views",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        *_counts("views"),
        sa.CheckConstraint("views >= 0", name=op.f("ck_report_campaign_views_views_nonnegative")),
        sa.PrimaryKeyConstraint(
            "merchant_id", "day", "campaign_id", name=op.f("pk_report_campaign_views")
        ),
    )
    op.create_table(
        "report_view_batches",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_view_batches")),
    )
    op.create_table(
        "report_watermarks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_watermarks")),
    )
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"])
    op.create_index("ix_gb_groups_updated_at", "gb_groups", ["updated_at"])
    op.create_index("ix_gb_groups_created_at", "gb_groups", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_gb_groups_created_at", table_name="gb_groups")
    op.drop_index("ix_gb_groups_updated_at", table_name="gb_groups")
    op.drop_index("ix_orders_updated_at", table_name="orders")
    for table in (
        "report_watermarks",
        "report_view_batches",
        "report_campaign_views",
        "report_buyer_first",
        "report_monthly_stations",
        "report_daily_buyers",
        "report_daily_stations",
        "report_daily",
    ):
        op.drop_table(table)
