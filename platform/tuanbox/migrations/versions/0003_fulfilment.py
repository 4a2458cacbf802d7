"""Fulfilment: stations, lockers, compartments, bookings, the command outbox, applied events, alerts.

Revision ID: 0003_fulfilment
Revises: 0002_commerce
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_fulfilment"
down_revision: str | None = "0002_commerce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=True),
        sa.Column("compartment_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("next_step", sa.String(length=500), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_ops_alerts_severity")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_ops_alerts_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alerts")),
    )
    op.create_index(op.f("ix_ops_alerts_kind"), "ops_alerts", ["kind"], unique=False)
    op.create_index(op.f("ix_ops_alerts_locker_id"), "ops_alerts", ["locker_id"], unique=False)
    op.create_index(op.f("ix_ops_alerts_order_id"), "ops_alerts", ["order_id"], unique=False)
    op.create_index(
        "ix_ops_alerts_status_opened", "ops_alerts", ["status", "opened_at"], unique=False
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("opening_notes", sa.String(length=500), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "lockers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("hardware_profile", sa.String(length=64), nullable=False),
        sa.Column("board_layout", sa.JSON(), nullable=False),
        sa.Column("broker_username", sa.String(length=64), nullable=False),
        sa.Column("broker_password_hash", sa.String(length=200), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("boot_id", sa.String(length=200), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_lockers_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lockers")),
        sa.UniqueConstraint("broker_username", name=op.f("uq_lockers_broker_username")),
    )
    op.create_index(op.f("ix_lockers_station_id"), "lockers", ["station_id"], unique=False)
    op.create_table(
        "applied_events",
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["locker_id"], ["lockers.id"], name=op.f("fk_applied_events_locker_id_lockers")
        ),
        sa.PrimaryKeyConstraint("locker_id", "seq", name=op.f("pk_applied_events")),
    )
    op.create_table(
        "compartments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("board", sa.Integer(), nullable=False),
        sa.Column("lock", sa.Integer(), nullable=False),
        sa.Column("size", sa.String(length=1), nullable=False),
        sa.Column("width_mm", sa.Integer(), nullable=False),
        sa.Column("height_mm", sa.Integer(), nullable=False),
        sa.Column("depth_mm", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wear_count", sa.Integer(), nullable=False),
        sa.Column("flagged_mismatch", sa.Boolean(), nullable=False),
        sa.Column("flag_detail", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("size IN ('S', 'M', 'L')", name=op.f("ck_compartments_size")),
        sa.CheckConstraint(
            "state IN ('free', 'reserved', 'occupied', 'out_of_service')",
            name=op.f("ck_compartments_state"),
        ),
        sa.CheckConstraint(
            "zone IN ('ambient', 'chilled', 'frozen')", name=op.f("ck_compartments_zone")
        ),
        sa.ForeignKeyConstraint(
            ["locker_id"], ["lockers.id"], name=op.f("fk_compartments_locker_id_lockers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compartments")),
        sa.UniqueConstraint(
            "locker_id", "board", "lock", name=op.f("uq_compartments_locker_id_board_lock")
        ),
    )
    op.create_index(op.f("ix_compartments_locker_id"), "compartments", ["locker_id"], unique=False)
    op.create_index(op.f("ix_compartments_state"), "compartments", ["state"], unique=False)
    op.create_table(
        "outbox_commands",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_code", sa.String(length=64), nullable=True),
        sa.Column("ack_detail", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'accepted', 'done', 'rejected', 'failed', 'expired')",
            name=op.f("ck_outbox_commands_status"),
        ),
        sa.ForeignKeyConstraint(
            ["locker_id"], ["lockers.id"], name=op.f("fk_outbox_commands_locker_id_lockers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_commands")),
    )
    op.create_index(
        "ix_outbox_commands_due", "outbox_commands", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_commands_locker_id"), "outbox_commands", ["locker_id"], unique=False
    )
    op.create_index(op.f("ix_outbox_commands_ref"), "outbox_commands", ["ref"], unique=False)
    op.create_table(
        "compartment_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("compartment_id", sa.Integer(), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("units_used", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deposit_code", sa.String(length=12), nullable=False),
        sa.Column("pickup_token_id", sa.String(length=36), nullable=True),
        sa.Column("token_issued_at", sa.BigInteger(), nullable=True),
        sa.Column("token_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("fallback_code_hash", sa.String(length=64), nullable=True),
        sa.Column("deposited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pickup_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retrieval_code", sa.String(length=12), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "state IN ('reserved', 'deposited', 'returning', 'closed')",
            name=op.f("ck_compartment_bookings_state"),
        ),
        sa.ForeignKeyConstraint(
            ["compartment_id"],
            ["compartments.id"],
            name=op.f("fk_compartment_bookings_compartment_id_compartments"),
        ),
        sa.ForeignKeyConstraint(
            ["locker_id"], ["lockers.id"], name=op.f("fk_compartment_bookings_locker_id_lockers")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_compartment_bookings_station_id_stations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compartment_bookings")),
        sa.UniqueConstraint("ref", name=op.f("uq_compartment_bookings_ref")),
    )
    op.create_index(
        op.f("ix_compartment_bookings_compartment_id"),
        "compartment_bookings",
        ["compartment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_compartment_bookings_locker_id"),
        "compartment_bookings",
        ["locker_id"],
        unique=False,
    )
    op.create_index(
        "ix_compartment_bookings_open",
        "compartment_bookings",
        ["compartment_id", "state"],
        unique=False,
    )
    op.create_index(
        op.f("ix_compartment_bookings_pickup_deadline"),
        "compartment_bookings",
        ["pickup_deadline"],
        unique=False,
    )
    op.create_index(
        op.f("ix_compartment_bookings_user_id"), "compartment_bookings", ["user_id"], unique=False
    )
    op.create_table(
        "fulfilment_orders",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("exception_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "state IN ('queued', 'booked', 'exception', 'closed')",
            name=op.f("ck_fulfilment_orders_state"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["compartment_bookings.id"],
            name=op.f("fk_fulfilment_orders_booking_id_compartment_bookings"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_fulfilment_orders_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_fulfilment_orders_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_fulfilment_orders")),
    )
    op.create_index(
        op.f("ix_fulfilment_orders_booking_id"), "fulfilment_orders", ["booking_id"], unique=False
    )
    op.create_index(
        "ix_fulfilment_orders_queue",
        "fulfilment_orders",
        ["station_id", "state", "queued_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_fulfilment_orders_queue", table_name="fulfilment_orders")
    op.drop_index(op.f("ix_fulfilment_orders_booking_id"), table_name="fulfilment_orders")
    op.drop_table("fulfilment_orders")
    op.drop_index(op.f("ix_compartment_bookings_user_id"), table_name="compartment_bookings")
    op.drop_index(
        op.f("ix_compartment_bookings_pickup_deadline"), table_name="compartment_bookings"
    )
    op.drop_index("ix_compartment_bookings_open", table_name="compartment_bookings")
    op.drop_index(op.f("ix_compartment_bookings_locker_id"), table_name="compartment_bookings")
    op.drop_index(op.f("ix_compartment_bookings_compartment_id"), table_name="compartment_bookings")
    op.drop_table("compartment_bookings")
    op.drop_index(op.f("ix_outbox_commands_ref"), table_name="outbox_commands")
    op.drop_index(op.f("ix_outbox_commands_locker_id"), table_name="outbox_commands")
    op.drop_index("ix_outbox_commands_due", table_name="outbox_commands")
    op.drop_table("outbox_commands")
    op.drop_index(op.f("ix_compartments_state"), table_name="compartments")
    op.drop_index(op.f("ix_compartments_locker_id"), table_name="compartments")
    op.drop_table("compartments")
    op.drop_table("applied_events")
    op.drop_index(op.f("ix_lockers_station_id"), table_name="lockers")
    op.drop_table("lockers")
    op.drop_table("stations")
    op.drop_index("ix_ops_alerts_status_opened", table_name="ops_alerts")
    op.drop_index(op.f("ix_ops_alerts_order_id"), table_name="ops_alerts")
    op.drop_index(op.f("ix_ops_alerts_locker_id"), table_name="ops_alerts")
    op.drop_index(op.f("ix_ops_alerts_kind"), table_name="ops_alerts")
    op.drop_table("ops_alerts")
