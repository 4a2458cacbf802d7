"""Group-buy campaigns, groups, members and quotas; flash sales, reservations and user totals.

Revision ID: 0004_groupbuy_flashsale
Revises: 0003_fulfilment
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_groupbuy_flashsale"
down_revision: str | None = "0003_fulfilment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flash_sales",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("sku_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("stock_cap", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
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
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_flash_sales_window_valid")),
        sa.CheckConstraint("per_user_limit >= 1", name=op.f("ck_flash_sales_limit_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= stock_cap",
            name=op.f("ck_flash_sales_remaining_within"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_flash_sales_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["skus.id"], name=op.f("fk_flash_sales_sku_id_skus"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sales")),
    )
    op.create_index(
        op.f("ix_flash_sales_merchant_id"), "flash_sales", ["merchant_id"], unique=False
    )
    op.create_index(op.f("ix_flash_sales_sku_id"), "flash_sales", ["sku_id"], unique=False)
    op.create_table(
        "gb_campaigns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("sku_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("leader_price_cents", sa.Integer(), nullable=True),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("group_ttl_s", sa.Integer(), nullable=False),
        sa.Column("station_ids", sa.JSON(), nullable=False),
        sa.Column("presale", sa.Boolean(), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=False),
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
        sa.CheckConstraint("kind IN ('fixed', 'tiered')", name=op.f("ck_gb_campaigns_kind_known")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_gb_campaigns_window_valid")),
        sa.CheckConstraint(
            "min_size >= 1 AND max_size >= min_size", name=op.f("ck_gb_campaigns_sizes_valid")
        ),
        sa.CheckConstraint("per_user_limit >= 1", name=op.f("ck_gb_campaigns_limit_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_gb_campaigns_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"], ["skus.id"], name=op.f("fk_gb_campaigns_sku_id_skus"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gb_campaigns")),
    )
    op.create_index(
        op.f("ix_gb_campaigns_merchant_id"), "gb_campaigns", ["merchant_id"], unique=False
    )
    op.create_index(op.f("ix_gb_campaigns_sku_id"), "gb_campaigns", ["sku_id"], unique=False)
    op.create_table(
        "flash_reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'released')", name=op.f("ck_flash_reservations_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_flash_reservations_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["flash_sales.id"],
            name=op.f("fk_flash_reservations_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_flash_reservations_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_reservations")),
        sa.UniqueConstraint("order_id", name=op.f("uq_flash_reservations_order_id")),
        sa.UniqueConstraint(
            "sale_id", "request_id", name=op.f("uq_flash_reservations_sale_id_request_id")
        ),
    )
    op.create_index(
        op.f("ix_flash_reservations_sale_id"), "flash_reservations", ["sale_id"], unique=False
    )
    op.create_index(
        op.f("ix_flash_reservations_user_id"), "flash_reservations", ["user_id"], unique=False
    )
    op.create_table(
        "flash_user_totals",
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.CheckConstraint("qty >= 0", name=op.f("ck_flash_user_totals_qty_nonnegative")),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["flash_sales.id"],
            name=op.f("fk_flash_user_totals_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sale_id", "user_id", name=op.f("pk_flash_user_totals")),
    )
    op.create_table(
        "gb_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("leader_user_id", sa.String(length=36), nullable=True),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        sa.Column("paid_count", sa.Integer(), nullable=False),
        sa.Column("min_size", sa.Integer(), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("join_seq", sa.Integer(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_unit_price_cents", sa.Integer(), nullable=True),
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
            "status IN ('open', 'filled', 'confirmed', 'failed')",
            name=op.f("ck_gb_groups_status_known"),
        ),
        sa.CheckConstraint(
            "paid_count >= 0 AND paid_count <= seats_taken", name=op.f("ck_gb_groups_paid_within")
        ),
        sa.CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= max_size", name=op.f("ck_gb_groups_seats_within")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["gb_campaigns.id"],
            name=op.f("fk_gb_groups_campaign_id_gb_campaigns"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gb_groups")),
    )
    op.create_index(op.f("ix_gb_groups_campaign_id"), "gb_groups", ["campaign_id"], unique=False)
    op.create_index(
        "ix_gb_groups_status_deadline", "gb_groups", ["status", "deadline_at"], unique=False
    )
    op.create_table(
        "gb_user_quotas",
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.CheckConstraint("qty >= 0", name=op.f("ck_gb_user_quotas_qty_nonnegative")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["gb_campaigns.id"],
            name=op.f("fk_gb_user_quotas_campaign_id_gb_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "user_id", name=op.f("pk_gb_user_quotas")),
    )
    op.create_table(
        "gb_members",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("joined_seq", sa.Integer(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["gb_groups.id"],
            name=op.f("fk_gb_members_group_id_gb_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_gb_members_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_gb_members_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gb_members")),
        sa.UniqueConstraint("group_id", "user_id", name=op.f("uq_gb_members_group_id_user_id")),
        sa.UniqueConstraint("order_id", name=op.f("uq_gb_members_order_id")),
    )
    op.create_index(op.f("ix_gb_members_group_id"), "gb_members", ["group_id"], unique=False)
    op.create_index(op.f("ix_gb_members_user_id"), "gb_members", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gb_members_user_id"), table_name="gb_members")
    op.drop_index(op.f("ix_gb_members_group_id"), table_name="gb_members")
    op.drop_table("gb_members")
    op.drop_table("gb_user_quotas")
    op.drop_index("ix_gb_groups_status_deadline", table_name="gb_groups")
    op.drop_index(op.f("ix_gb_groups_campaign_id"), table_name="gb_groups")
    op.drop_table("gb_groups")
    op.drop_table("flash_user_totals")
    op.drop_index(op.f("ix_flash_reservations_user_id"), table_name="flash_reservations")
    op.drop_index(op.f("ix_flash_reservations_sale_id"), table_name="flash_reservations")
    op.drop_table("flash_reservations")
    op.drop_index(op.f("ix_gb_campaigns_sku_id"), table_name="gb_campaigns")
    op.drop_index(op.f("ix_gb_campaigns_merchant_id"), table_name="gb_campaigns")
    op.drop_table("gb_campaigns")
    op.drop_index(op.f("ix_flash_sales_sku_id"), table_name="flash_sales")
    op.drop_index(op.f("ix_flash_sales_merchant_id"), table_name="flash_sales")
    op.drop_table("flash_sales")
