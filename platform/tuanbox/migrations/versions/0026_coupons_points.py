"""Coupons and points: templates, coupons and their ledger, each order's discount split
over its lines, and the points ledger with its cached balances and what each order earned.

`orders.discount_cents` is what coupons and points took off at checkout: the shopper pays
`total_cents - discount_cents`, always at least a cent when anything is taken off.

Revision ID: 0026_coupons_points
Revises: 0025_reports
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_coupons_points"
down_revision: str | None = "0025_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DISCOUNT = "discount_cents >= 0 AND (discount_cents = 0 OR discount_cents < total_cents)"


def upgrade() -> None:

    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_off_cents", _BIG, nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=False),
        sa.Column("max_off_cents", _BIG, nullable=True),
        sa.Column("threshold_cents", _BIG, nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("total_limit", _BIG, nullable=True),
        sa.Column("issued_count", _BIG, nullable=False),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("points_cost", _BIG, nullable=True),
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
        sa.CheckConstraint(
            "(kind = 'amount_off' AND amount_off_cents > 0) OR (kind = 'percent_off' AND percent_off > 0)",
            name=op.f("ck_coupon_templates_worth_something"),
        ),
        sa.CheckConstraint(
            "audience IN ('all', 'new_user', 'wake_up')",
            name=op.f("ck_coupon_templates_audience_known"),
        ),
        sa.CheckConstraint(
            "kind IN ('amount_off', 'percent_off')", name=op.f("ck_coupon_templates_kind_known")
        ),
        sa.CheckConstraint(
            "amount_off_cents >= 0 AND threshold_cents >= 0",
            name=op.f("ck_coupon_templates_money_nonneg"),
        ),
        sa.CheckConstraint(
            "per_user_limit > 0", name=op.f("ck_coupon_templates_per_user_positive")
        ),
        sa.CheckConstraint(
            "percent_off >= 0 AND percent_off < 100", name=op.f("ck_coupon_templates_percent_range")
        ),
        sa.CheckConstraint(
            "points_cost IS NULL OR points_cost > 0",
            name=op.f("ck_coupon_templates_points_positive"),
        ),
        sa.CheckConstraint(
            "total_limit IS NULL OR issued_count <= total_limit",
            name=op.f("ck_coupon_templates_within_total"),
        ),
        sa.CheckConstraint(
            "valid_from < valid_until", name=op.f("ck_coupon_templates_window_order")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_coupon_templates_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    op.create_index(
        op.f("ix_coupon_templates_merchant_id"), "coupon_templates", ["merchant_id"], unique=False
    )
    op.create_table(
        "points_accounts",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("balance", _BIG, nullable=False),
        sa.Column("debt", _BIG, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "balance >= 0 AND debt >= 0", name=op.f("ck_points_accounts_never_negative")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_points_accounts_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_points_accounts")),
    )
    op.create_table(
        "points_ledger",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("delta", _BIG, nullable=False),
        sa.Column("debt_delta", _BIG, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_points_ledger_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_ledger")),
        sa.UniqueConstraint("key", name=op.f("uq_points_ledger_key")),
    )
    op.create_index(op.f("ix_points_ledger_order_id"), "points_ledger", ["order_id"], unique=False)
    op.create_index("ix_points_ledger_user_id_id", "points_ledger", ["user_id", "id"], unique=False)
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("issue_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'used') = (order_id IS NOT NULL)", name=op.f("ck_coupons_used_has_order")
        ),
        sa.CheckConstraint(
            "status IN ('available', 'used', 'expired')", name=op.f("ck_coupons_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_coupons_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_coupons_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("issue_key", name=op.f("uq_coupons_issue_key")),
    )
    op.create_index(op.f("ix_coupons_order_id"), "coupons", ["order_id"], unique=False)
    op.create_index(
        "ix_coupons_template_id_user_id", "coupons", ["template_id", "user_id"], unique=False
    )
    op.create_index("ix_coupons_user_id_status", "coupons", ["user_id", "status"], unique=False)
    op.create_table(
        "order_discount_lines",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("amount_cents", _BIG, nullable=False),
        sa.Column("coupon_cents", _BIG, nullable=False),
        sa.Column("points_cents", _BIG, nullable=False),
        sa.Column("refund_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "coupon_cents + points_cents <= amount_cents",
            name=op.f("ck_order_discount_lines_within_line"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_discount_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_discount_lines")),
        sa.UniqueConstraint(
            "order_id", "line_no", name=op.f("uq_order_discount_lines_order_id_line_no")
        ),
    )
    op.create_table(
        "order_discounts",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("coupon_cents", _BIG, nullable=False),
        sa.Column("points_used", _BIG, nullable=False),
        sa.Column("points_cents", _BIG, nullable=False),
        sa.Column("points_returned", _BIG, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('applied', 'released')", name=op.f("ck_order_discounts_status_known")
        ),
        sa.CheckConstraint(
            "coupon_cents >= 0 AND points_cents >= 0 AND points_used >= 0",
            name=op.f("ck_order_discounts_nonneg"),
        ),
        sa.CheckConstraint(
            "points_returned >= 0 AND points_returned <= points_used",
            name=op.f("ck_order_discounts_ret"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_discounts_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_discounts")),
    )
    op.create_table(
        "order_points",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("earned", _BIG, nullable=False),
        sa.Column("base_cents", _BIG, nullable=False),
        sa.Column("refunded_base_cents", _BIG, nullable=False),
        sa.Column("reversed", _BIG, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "earned >= 0 AND reversed >= 0 AND reversed <= earned",
            name=op.f("ck_order_points_range"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_points_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_points")),
    )
    op.create_table(
        "coupon_ledger",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("coupon_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("cents", _BIG, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupon_ledger_coupon_id_coupons"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_ledger")),
        sa.UniqueConstraint("key", name=op.f("uq_coupon_ledger_key")),
    )
    op.create_index(
        op.f("ix_coupon_ledger_coupon_id"), "coupon_ledger", ["coupon_id"], unique=False
    )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("discount_cents", _BIG, server_default="0", nullable=False))
        batch.create_check_constraint(op.f("ck_orders_discount_within_total"), _DISCOUNT)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_discount_within_total"), type_="check")
        batch.drop_column("discount_cents")
    for table in (
        "coupon_ledger",
        "order_points",
        "order_discounts",
        "order_discount_lines",
        "coupons",
        "points_ledger",
        "points_accounts",
        "coupon_templates",
    ):
        op.drop_table(table)
