"""Cold chain: evaluator state per compartment, excursion episodes, quality holds.

Revision ID: 0005_coldchain
Revises: 0004_groupbuy_flashsale
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_coldchain"
down_revision: str | None = "0004_groupbuy_flashsale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coldchain_states",
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("compartment", sa.String(length=8), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("locker_id", "compartment", name=op.f("pk_coldchain_states")),
    )
    op.create_table(
        "coldchain_episodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("locker_id", sa.String(length=64), nullable=False),
        sa.Column("compartment", sa.String(length=8), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peak_c", sa.Float(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'cleared')", name=op.f("ck_coldchain_episodes_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coldchain_episodes")),
    )
    op.create_index(op.f("ix_coldchain_episodes_locker_id"), "coldchain_episodes", ["locker_id"])
    op.create_index(op.f("ix_coldchain_episodes_alert_id"), "coldchain_episodes", ["alert_id"])
    op.create_table(
        "coldchain_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("previous_status", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'released', 'rejected')", name=op.f("ck_coldchain_holds_status")
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["coldchain_episodes.id"],
            name=op.f("fk_coldchain_holds_episode_id_coldchain_episodes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coldchain_holds")),
        sa.UniqueConstraint(
            "episode_id", "order_id", name=op.f("uq_coldchain_holds_episode_id_order_id")
        ),
    )
    op.create_index(op.f("ix_coldchain_holds_episode_id"), "coldchain_holds", ["episode_id"])
    op.create_index(op.f("ix_coldchain_holds_order_id"), "coldchain_holds", ["order_id"])


def downgrade() -> None:
    op.drop_table("coldchain_holds")
    op.drop_table("coldchain_episodes")
    op.drop_table("coldchain_states")
