"""Segments and experiments: user tags (manual and computed), RFM scores per scope, named
segments by rule, pushes to a segment with one row per recipient (a re-run sends nothing
twice), daily scheduled pushes; A/B experiments on a campaign's title, image or price with their
flushed exposure counts, flush batch ids and one conversion per shopper.

Revision ID: 0029_segments_experiments
Revises: 0028_trace_completeness
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_segments_experiments"
down_revision: str | None = "0028_trace_completeness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_flushes",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_experiment_flushes")),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_segments_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("merchant_id", "name", name="uq_segments_name"),
    )
    op.create_index(op.f("ix_segments_merchant_id"), "segments", ["merchant_id"], unique=False)
    op.create_table(
        "rfm_scores",
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("last_paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "frequency", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "monetary_cents", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("r", sa.Integer(), nullable=False),
        sa.Column("f", sa.Integer(), nullable=False),
        sa.Column("m", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "r BETWEEN 1 AND 5 AND f BETWEEN 1 AND 5 AND m BETWEEN 1 AND 5",
            name=op.f("ck_rfm_scores_q"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_rfm_scores_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scope", "user_id", name=op.f("pk_rfm_scores")),
    )
    op.create_index(
        "ix_rfm_scores_scope_last", "rfm_scores", ["scope", "last_paid_at"], unique=False
    )
    op.create_index("ix_rfm_scores_scope_rm", "rfm_scores", ["scope", "r", "m"], unique=False)
    op.create_table(
        "segment_pushes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("coupon_template_id", sa.String(length=36), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("conversion_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('coupon', 'message')", name=op.f("ck_segment_pushes_kind_known")
        ),
        sa.CheckConstraint("conversion_days > 0", name=op.f("ck_segment_pushes_window_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_segment_pushes_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_pushes_segment_id_segments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_pushes")),
        sa.UniqueConstraint("key", name=op.f("uq_segment_pushes_key")),
    )
    op.create_index(
        op.f("ix_segment_pushes_merchant_id"), "segment_pushes", ["merchant_id"], unique=False
    )
    op.create_table(
        "segment_scheduled_pushes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("coupon_template_id", sa.String(length=36), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("minute_of_day", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('coupon', 'message')", name=op.f("ck_segment_scheduled_pushes_kind_known")
        ),
        sa.CheckConstraint(
            "minute_of_day >= 0 AND minute_of_day < 1440",
            name=op.f("ck_segment_scheduled_pushes_minute_range"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_segment_scheduled_pushes_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_scheduled_pushes_segment_id_segments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_scheduled_pushes")),
    )
    op.create_index(
        op.f("ix_segment_scheduled_pushes_merchant_id"),
        "segment_scheduled_pushes",
        ["merchant_id"],
        unique=False,
    )
    op.create_table(
        "user_tags",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('manual', 'computed')", name=op.f("ck_user_tags_source_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_tags_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("merchant_id", "user_id", "tag", name=op.f("pk_user_tags")),
    )
    op.create_index("ix_user_tags_scope_tag", "user_tags", ["merchant_id", "tag"], unique=False)
    op.create_table(
        "segment_push_recipients",
        sa.Column("push_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column(
            "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'rate_limited', 'skipped')",
            name=op.f("ck_segment_push_recipients_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["segment_pushes.id"],
            name=op.f("fk_segment_push_recipients_push_id_segment_pushes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_segment_push_recipients_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("push_id", "user_id", name=op.f("pk_segment_push_recipients")),
    )
    op.create_index(
        "ix_push_recipients_user_sent",
        "segment_push_recipients",
        ["user_id", "sent_at"],
        unique=False,
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("field", sa.String(length=10), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("min_sample", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "field IN ('title', 'image', 'price')", name=op.f("ck_experiments_field_known")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'stopped')", name=op.f("ck_experiments_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["gb_campaigns.id"],
            name=op.f("fk_experiments_campaign_id_gb_campaigns"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_experiments_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(
        "ix_experiments_campaign_status", "experiments", ["campaign_id", "status"], unique=False
    )
    op.create_index(
        op.f("ix_experiments_merchant_id"), "experiments", ["merchant_id"], unique=False
    )
    op.create_table(
        "experiment_conversions",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("arm", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_conversions_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_experiment_conversions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name=op.f("pk_experiment_conversions")),
    )
    op.create_table(
        "experiment_exposures",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("arm", sa.String(length=20), nullable=False),
        sa.Column(
            "exposures", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_exposures_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "arm", name=op.f("pk_experiment_exposures")),
    )


def downgrade() -> None:
    op.drop_table("experiment_exposures")
    op.drop_table("experiment_conversions")
    op.drop_index(op.f("ix_experiments_merchant_id"), table_name="experiments")
    op.drop_index("ix_experiments_campaign_status", table_name="experiments")
    op.drop_table("experiments")
    op.drop_index("ix_push_recipients_user_sent", table_name="segment_push_recipients")
    op.drop_table("segment_push_recipients")
    op.drop_index("ix_user_tags_scope_tag", table_name="user_tags")
    op.drop_table("user_tags")
    op.drop_index(
        op.f("ix_segment_scheduled_pushes_merchant_id"), table_name="segment_scheduled_pushes"
    )
    op.drop_table("segment_scheduled_pushes")
    op.drop_index(op.f("ix_segment_pushes_merchant_id"), table_name="segment_pushes")
    op.drop_table("segment_pushes")
    op.drop_index("ix_rfm_scores_scope_rm", table_name="rfm_scores")
    op.drop_index("ix_rfm_scores_scope_last", table_name="rfm_scores")
    op.drop_table("rfm_scores")
    op.drop_index(op.f("ix_segments_merchant_id"), table_name="segments")
    op.drop_table("segments")
    op.drop_table("experiment_flushes")
