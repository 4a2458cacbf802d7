"""The merchant console: campaigns that staff can pause, and merchants' licence documents.

`gb_campaigns.paused_at`: set while a campaign is paused (no group opens or joins, the shop
does not list it). `merchant_licences`: licence files staff upload and ops' review of each
(pending, approved, rejected); approving one marks the merchant verified.

Revision ID: 0023_console
Revises: 0022_group_seats
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_console"
down_revision: str | None = "0022_group_seats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("gb_campaigns") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "merchant_licences",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "merchant_id",
            sa.String(36),
            sa.ForeignKey("merchants.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(100), nullable=False),
        sa.Column("original_name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("size_bytes", _BIG, nullable=False),
        sa.Column("uploaded_by", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), server_default="pending", nullable=False),
        sa.Column("reviewed_by", sa.String(36), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_merchant_licences_status_known"),
        ),
    )
    op.create_index(op.f("ix_merchant_licences_merchant_id"), "merchant_licences", ["merchant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_merchant_licences_merchant_id"), table_name="merchant_licences")
    op.drop_table("merchant_licences")
    with op.batch_alter_table("gb_campaigns") as batch:
        batch.drop_column("paused_at")
