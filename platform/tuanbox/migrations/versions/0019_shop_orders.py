"""Shop order pages: product reviews after pickup, and referrals into groups.

`reviews` holds one rating (1–5) and a short text per picked-up order, with a merchant
reply for the console later; `referrals` records the first inviter through whom a shopper
reached a group (unique per group and invitee; never the invitee themselves).

Revision ID: 0019_shop_orders
Revises: 0018_data_protection
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_shop_orders"
down_revision: str | None = "0018_data_protection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("merchant_reply", sa.String(length=500), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_reviews_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reviews_user_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_reviews_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_reviews_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("order_id", name=op.f("uq_reviews_order_id")),
    )
    op.create_index("ix_reviews_product_created", "reviews", ["product_id", "created_at"])
    op.create_index(op.f("ix_reviews_user_id"), "reviews", ["user_id"])
    op.create_index(op.f("ix_reviews_merchant_id"), "reviews", ["merchant_id"])

    op.create_table(
        "referrals",
        sa.Column("id", _SERIAL, nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("invitee_id", sa.String(length=36), nullable=False),
        sa.Column("inviter_id", sa.String(length=36), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("inviter_id <> invitee_id", name=op.f("ck_referrals_not_self")),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["gb_groups.id"],
            name=op.f("fk_referrals_group_id_gb_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invitee_id"],
            ["users.id"],
            name=op.f("fk_referrals_invitee_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["users.id"],
            name=op.f("fk_referrals_inviter_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint(
            "group_id", "invitee_id", name=op.f("uq_referrals_group_id_invitee_id")
        ),
    )
    op.create_index(op.f("ix_referrals_inviter_id"), "referrals", ["inviter_id"])


def downgrade() -> None:
    op.drop_table("referrals")
    op.drop_table("reviews")
