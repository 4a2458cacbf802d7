"""Orders: every kind reaches a locker (confirmation paths, delivery waves).

Stations get their wave times, merchants their acceptance policy, orders what they await,
their acceptance deadline and their wave; delivery waves and pre-sale receipts are new.

Revision ID: 0015_order_paths
Revises: 0014_locker_contract
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_order_paths"
down_revision: str | None = "0014_locker_contract"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWAITING = "awaiting IS NULL OR awaiting IN ('group', 'merchant', 'receiving', 'station')"


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("wave_cutoff", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("wave_departure", sa.String(length=5), nullable=True))

    with op.batch_alter_table("merchants") as batch:
        batch.add_column(
            sa.Column(
                "order_acceptance", sa.String(length=8), server_default="auto", nullable=False
            )
        )
        batch.add_column(
            sa.Column("acceptance_window_s", sa.Integer(), server_default="7200", nullable=False)
        )
        batch.add_column(
            sa.Column(
                "acceptance_lapse", sa.String(length=8), server_default="refund", nullable=False
            )
        )
        batch.create_check_constraint(
            op.f("ck_merchants_order_acceptance_known"), "order_acceptance IN ('auto', 'manual')"
        )
        batch.create_check_constraint(
            op.f("ck_merchants_acceptance_lapse_known"), "acceptance_lapse IN ('confirm', 'refund')"
        )
        batch.create_check_constraint(
            op.f("ck_merchants_acceptance_window_bounded"),
            "acceptance_window_s BETWEEN 60 AND 604800",
        )

    op.create_table(
        "delivery_waves",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("wave_date", sa.Date(), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("departs_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allocate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cutoff_at <= allocate_at AND allocate_at <= departs_at",
            name=op.f("ck_delivery_waves_order"),
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_delivery_waves_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_waves")),
        sa.UniqueConstraint(
            "station_id", "wave_date", name=op.f("uq_delivery_waves_station_id_wave_date")
        ),
    )
    op.create_index(
        op.f("ix_delivery_waves_allocate_at"), "delivery_waves", ["allocate_at"], unique=False
    )
    op.create_index(
        op.f("ix_delivery_waves_station_id"), "delivery_waves", ["station_id"], unique=False
    )

    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("awaiting", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("accept_deadline", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("wave_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_orders_wave_id_delivery_waves"), "delivery_waves", ["wave_id"], ["id"]
        )
        batch.create_index(op.f("ix_orders_wave_id"), ["wave_id"], unique=False)
        batch.create_index(
            op.f("ix_orders_status_accept_deadline"), ["status", "accept_deadline"], unique=False
        )
        batch.create_check_constraint(op.f("ck_orders_awaiting_known"), _AWAITING)

    op.create_table(
        "presale_receipts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("qty", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.String(length=64), nullable=False),
        sa.Column("trace_event_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["gb_campaigns.id"],
            name=op.f("fk_presale_receipts_campaign_id_gb_campaigns"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_presale_receipts_station_id_stations")
        ),
        sa.ForeignKeyConstraint(
            ["trace_event_id"],
            ["trace_events.id"],
            name=op.f("fk_presale_receipts_trace_event_id_trace_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presale_receipts")),
        sa.UniqueConstraint(
            "campaign_id", "station_id", name=op.f("uq_presale_receipts_campaign_id_station_id")
        ),
    )
    op.create_index(
        op.f("ix_presale_receipts_campaign_id"), "presale_receipts", ["campaign_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_presale_receipts_campaign_id"), table_name="presale_receipts")
    op.drop_table("presale_receipts")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_awaiting_known"), type_="check")
        batch.drop_index(op.f("ix_orders_status_accept_deadline"))
        batch.drop_index(op.f("ix_orders_wave_id"))
        batch.drop_constraint(op.f("fk_orders_wave_id_delivery_waves"), type_="foreignkey")
        batch.drop_column("wave_id")
        batch.drop_column("accept_deadline")
        batch.drop_column("awaiting")
    op.drop_index(op.f("ix_delivery_waves_station_id"), table_name="delivery_waves")
    op.drop_index(op.f("ix_delivery_waves_allocate_at"), table_name="delivery_waves")
    op.drop_table("delivery_waves")
    with op.batch_alter_table("merchants") as batch:
        batch.drop_constraint(op.f("ck_merchants_acceptance_window_bounded"), type_="check")
        batch.drop_constraint(op.f("ck_merchants_acceptance_lapse_known"), type_="check")
        batch.drop_constraint(op.f("ck_merchants_order_acceptance_known"), type_="check")
        batch.drop_column("acceptance_lapse")
        batch.drop_column("acceptance_window_s")
        batch.drop_column("order_acceptance")
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("wave_departure")
        batch.drop_column("wave_cutoff")
        batch.drop_column("timezone")
