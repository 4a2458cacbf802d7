"""Trace: append-only EPCIS events, their lots, anchoring windows and window leaves.

Revision ID: 0006_trace
Revises: 0005_coldchain
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_trace"
down_revision: str | None = "0005_coldchain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trace_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_hash", sa.String(length=100), nullable=False),
        sa.Column("leaf_digest", sa.String(length=64), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("biz_step", sa.String(length=200), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_trace_events_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_events")),
        sa.UniqueConstraint("leaf_digest", name=op.f("uq_trace_events_leaf_digest")),
    )
    op.create_index(op.f("ix_trace_events_event_hash"), "trace_events", ["event_hash"])
    op.create_index(op.f("ix_trace_events_recorded_at"), "trace_events", ["recorded_at"])
    op.create_index(op.f("ix_trace_events_merchant_id"), "trace_events", ["merchant_id"])
    op.create_table(
        "trace_event_lots",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["trace_events.id"],
            name=op.f("fk_trace_event_lots_event_id_trace_events"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("event_id", "gtin", "lot_code", name=op.f("pk_trace_event_lots")),
    )
    op.create_index("ix_trace_event_lots_gtin_lot", "trace_event_lots", ["gtin", "lot_code"])
    op.create_table(
        "trace_windows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("chain_id", sa.Integer(), nullable=True),
        sa.Column("contract", sa.String(length=42), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_windows")),
        sa.UniqueConstraint("root", name=op.f("uq_trace_windows_root")),
    )
    op.create_index(op.f("ix_trace_windows_created_at"), "trace_windows", ["created_at"])
    op.create_index(op.f("ix_trace_windows_anchored_at"), "trace_windows", ["anchored_at"])
    op.create_table(
        "trace_window_leaves",
        sa.Column("window_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["trace_windows.id"],
            name=op.f("fk_trace_window_leaves_window_id_trace_windows"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["trace_events.id"],
            name=op.f("fk_trace_window_leaves_event_id_trace_events"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("window_id", "position", name=op.f("pk_trace_window_leaves")),
        sa.UniqueConstraint("event_id", name=op.f("uq_trace_window_leaves_event_id")),
    )


def downgrade() -> None:
    op.drop_table("trace_window_leaves")
    op.drop_index(op.f("ix_trace_windows_anchored_at"), table_name="trace_windows")
    op.drop_index(op.f("ix_trace_windows_created_at"), table_name="trace_windows")
    op.drop_table("trace_windows")
    op.drop_index("ix_trace_event_lots_gtin_lot", table_name="trace_event_lots")
    op.drop_table("trace_event_lots")
    op.drop_index(op.f("ix_trace_events_merchant_id"), table_name="trace_events")
    op.drop_index(op.f("ix_trace_events_recorded_at"), table_name="trace_events")
    op.drop_index(op.f("ix_trace_events_event_hash"), table_name="trace_events")
    op.drop_table("trace_events")
