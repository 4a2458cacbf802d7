"""Growth and paid membership: platform-wide referral bindings (first touch, source campaign,
no self-referral), invite-leaderboard rewards and awards (unique per period and rank/user),
invite tasks with their grants and ledger, new-user offers and claims (unique account, phone,
device and payer keys), membership terms, windows and ledger, and member prices per SKU.

Revision ID: 0027_growth
Revises: 0026_coupons_points
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_growth"
down_revision: str | None = "0026_coupons_points"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_ledger",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("coupon_id", sa.String(length=36), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_ledger")),
        sa.UniqueConstraint("key", name=op.f("uq_task_ledger_key")),
    )
    op.create_index(op.f("ix_task_ledger_task_id"), "task_ledger", ["task_id"], unique=False)
    op.create_table(
        "invite_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("goal", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("goal > 0 AND goal <= 1000", name=op.f("ck_invite_tasks_goal_range")),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_invite_tasks_window_order")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_invite_tasks_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_invite_tasks_template_id_coupon_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invite_tasks")),
    )
    op.create_index(
        op.f("ix_invite_tasks_merchant_id"), "invite_tasks", ["merchant_id"], unique=False
    )
    op.create_table(
        "leaderboard_awards",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("invites", _BIG, nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("coupon_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'granted', 'skipped')",
            name=op.f("ck_leaderboard_awards_status_known"),
        ),
        sa.CheckConstraint("rank > 0 AND invites > 0", name=op.f("ck_leaderboard_awards_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_leaderboard_awards_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_awards")),
        sa.UniqueConstraint("period", "rank", name=op.f("uq_leaderboard_awards_period_rank")),
        sa.UniqueConstraint("period", "user_id", name=op.f("uq_leaderboard_awards_period_user_id")),
    )
    op.create_table(
        "leaderboard_rewards",
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("top_n", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "period_kind IN ('week', 'month')", name=op.f("ck_leaderboard_rewards_kind_known")
        ),
        sa.CheckConstraint(
            "top_n > 0 AND top_n <= 100", name=op.f("ck_leaderboard_rewards_top_range")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_leaderboard_rewards_template_id_coupon_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("period_kind", name=op.f("pk_leaderboard_rewards")),
    )
    op.create_table(
        "membership_terms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=True),
        sa.Column("amount_cents", _BIG, nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_cents", _BIG, nullable=False),
        sa.Column("provider_refund_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'expired')",
            name=op.f("ck_membership_terms_status_known"),
        ),
        sa.CheckConstraint(
            "amount_cents > 0 AND days > 0", name=op.f("ck_membership_terms_positive")
        ),
        sa.CheckConstraint(
            "refunded_cents >= 0 AND refunded_cents <= amount_cents",
            name=op.f("ck_membership_terms_refund"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_membership_terms_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_terms")),
    )
    op.create_index(
        "ix_membership_terms_user_id_status",
        "membership_terms",
        ["user_id", "status"],
        unique=False,
    )
    op.create_index(
        "uq_membership_terms_provider_txn", "membership_terms", ["provider", "txn_id"], unique=True
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("starts_at <= ends_at", name=op.f("ck_memberships_window_order")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_memberships_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_memberships")),
    )
    op.create_table(
        "referral_bindings",
        sa.Column("invitee_id", sa.String(length=36), nullable=False),
        sa.Column("inviter_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("inviter_id <> invitee_id", name=op.f("ck_referral_bindings_not_self")),
        sa.ForeignKeyConstraint(
            ["invitee_id"],
            ["users.id"],
            name=op.f("fk_referral_bindings_invitee_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["users.id"],
            name=op.f("fk_referral_bindings_inviter_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("invitee_id", name=op.f("pk_referral_bindings")),
    )
    op.create_index(
        op.f("ix_referral_bindings_inviter_id"), "referral_bindings", ["inviter_id"], unique=False
    )
    op.create_table(
        "member_prices",
        sa.Column("sku_id", sa.String(length=36), nullable=False),
        sa.Column("price_cents", _BIG, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_cents > 0", name=op.f("ck_member_prices_price_positive")),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["skus.id"], name=op.f("fk_member_prices_sku_id_skus"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sku_id", name=op.f("pk_member_prices")),
    )
    op.create_table(
        "membership_ledger",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("term_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("cents", _BIG, nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["term_id"],
            ["membership_terms.id"],
            name=op.f("fk_membership_ledger_term_id_membership_terms"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_ledger")),
        sa.UniqueConstraint("key", name=op.f("uq_membership_ledger_key")),
    )
    op.create_index(
        op.f("ix_membership_ledger_user_id"), "membership_ledger", ["user_id"], unique=False
    )
    op.create_table(
        "new_user_offers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sku_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("price_cents", _BIG, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("price_cents > 0", name=op.f("ck_new_user_offers_price_positive")),
        sa.ForeignKeyConstraint(
            ["sku_id"],
            ["skus.id"],
            name=op.f("fk_new_user_offers_sku_id_skus"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_new_user_offers")),
    )
    op.create_table(
        "task_grants",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("coupon_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('granted', 'revoked', 'kept_used')",
            name=op.f("ck_task_grants_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["invite_tasks.id"],
            name=op.f("fk_task_grants_task_id_invite_tasks"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_task_grants_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_grants")),
        sa.UniqueConstraint("task_id", "user_id", name=op.f("uq_task_grants_task_id_user_id")),
    )
    op.create_index(op.f("ix_task_grants_user_id"), "task_grants", ["user_id"], unique=False)
    op.create_table(
        "new_user_claims",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("offer_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("phone_key", sa.String(length=64), nullable=False),
        sa.Column("device_key", sa.String(length=64), nullable=False),
        sa.Column("payer_key", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('claimed', 'released')", name=op.f("ck_new_user_claims_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["new_user_offers.id"],
            name=op.f("fk_new_user_claims_offer_id_new_user_offers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_new_user_claims_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_new_user_claims")),
        sa.UniqueConstraint("device_key", name=op.f("uq_new_user_claims_device_key")),
        sa.UniqueConstraint("order_id", name=op.f("uq_new_user_claims_order_id")),
        sa.UniqueConstraint("payer_key", name=op.f("uq_new_user_claims_payer_key")),
        sa.UniqueConstraint("phone_key", name=op.f("uq_new_user_claims_phone_key")),
        sa.UniqueConstraint("user_id", name=op.f("uq_new_user_claims_user_id")),
    )
    op.create_index("ix_new_user_claims_offer_id", "new_user_claims", ["offer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_new_user_claims_offer_id", table_name="new_user_claims")
    op.drop_table("new_user_claims")
    op.drop_index(op.f("ix_task_grants_user_id"), table_name="task_grants")
    op.drop_table("task_grants")
    op.drop_table("new_user_offers")
    op.drop_index(op.f("ix_membership_ledger_user_id"), table_name="membership_ledger")
    op.drop_table("membership_ledger")
    op.drop_table("member_prices")
    op.drop_index(op.f("ix_referral_bindings_inviter_id"), table_name="referral_bindings")
    op.drop_table("referral_bindings")
    op.drop_table("memberships")
    op.drop_index("uq_membership_terms_provider_txn", table_name="membership_terms")
    op.drop_index("ix_membership_terms_user_id_status", table_name="membership_terms")
    op.drop_table("membership_terms")
    op.drop_table("leaderboard_rewards")
    op.drop_table("leaderboard_awards")
    op.drop_index(op.f("ix_invite_tasks_merchant_id"), table_name="invite_tasks")
    op.drop_table("invite_tasks")
    op.drop_index(op.f("ix_task_ledger_task_id"), table_name="task_ledger")
    op.drop_table("task_ledger")
