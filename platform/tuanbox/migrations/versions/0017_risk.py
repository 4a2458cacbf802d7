"""Risk control: rules, scores and the ops review queue.

Signals (keyed blind indexes per event), reviews (one open per subject) and the orders
they hold; orders get `risk_hold`, and `awaiting` may now be `review`.

Revision ID: 0017_risk
Revises: 0016_audit_chain
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_risk"
down_revision: str | None = "0016_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_EVENTS = (
    "event IN ('signin', 'signup', 'address', 'order', 'join', 'checkout', 'payment_failed', "
    "'payment_succeeded')"
)
_KEYS = "kind IN ('ip', 'device', 'address', 'payer', 'user')"
_AWAITING_BEFORE = "awaiting IS NULL OR awaiting IN ('group', 'merchant', 'receiving', 'station')"
_AWAITING = (
    "awaiting IS NULL OR awaiting IN ('group', 'merchant', 'receiving', 'station', 'review')"
)
_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "risk_signals",
        sa.Column("id", _SERIAL, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("ref", sa.String(length=120), nullable=True),
        sa.CheckConstraint(_EVENTS, name=op.f("ck_risk_signals_event_known")),
        sa.CheckConstraint(_KEYS, name=op.f("ck_risk_signals_kind_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_signals")),
        sa.UniqueConstraint("event", "kind", "ref", name=op.f("uq_risk_signals_event_kind_ref")),
    )
    op.create_index("ix_risk_signals_kind_value_at", "risk_signals", ["kind", "value", "at"])
    op.create_index("ix_risk_signals_user_id_kind", "risk_signals", ["user_id", "kind"])
    op.create_index("ix_risk_signals_order_id", "risk_signals", ["order_id"])
    op.create_index("ix_risk_signals_at", "risk_signals", ["at"])

    op.create_table(
        "risk_reviews",
        sa.Column("id", _SERIAL, nullable=False),
        sa.Column("subject_type", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("subject_key", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("hits", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
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
            "subject_type IN ('order', 'user', 'group')",
            name=op.f("ck_risk_reviews_subject_known"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'approved', 'rejected')", name=op.f("ck_risk_reviews_status_known")
        ),
        sa.CheckConstraint(
            "action IN ('review', 'block')", name=op.f("ck_risk_reviews_action_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_reviews")),
    )
    # One open review per subject: a later decision about it updates that review.
    op.create_index(
        "uq_risk_reviews_open_subject",
        "risk_reviews",
        ["subject_key"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_index("ix_risk_reviews_status_created_at", "risk_reviews", ["status", "created_at"])
    op.create_index("ix_risk_reviews_user_id_status", "risk_reviews", ["user_id", "status"])

    op.create_table(
        "risk_holds",
        sa.Column("review_id", _SERIAL, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["risk_reviews.id"],
            name=op.f("fk_risk_holds_review_id_risk_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_risk_holds_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("review_id", "order_id", name=op.f("pk_risk_holds")),
    )
    op.create_index(op.f("ix_risk_holds_order_id"), "risk_holds", ["order_id"], unique=False)

    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("risk_hold", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.drop_constraint(op.f("ck_orders_awaiting_known"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_awaiting_known"), _AWAITING)


def downgrade() -> None:
    # Held orders waiting for a review go back to waiting for nothing the old schema knows.
    op.execute("UPDATE orders SET awaiting = NULL WHERE awaiting = 'review'")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_awaiting_known"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_awaiting_known"), _AWAITING_BEFORE)
        batch.drop_column("risk_hold")
    op.drop_index(op.f("ix_risk_holds_order_id"), table_name="risk_holds")
    op.drop_table("risk_holds")
    op.drop_index("ix_risk_reviews_user_id_status", table_name="risk_reviews")
    op.drop_index("ix_risk_reviews_status_created_at", table_name="risk_reviews")
    op.drop_index("uq_risk_reviews_open_subject", table_name="risk_reviews")
    op.drop_table("risk_reviews")
    op.drop_index("ix_risk_signals_at", table_name="risk_signals")
    op.drop_index("ix_risk_signals_order_id", table_name="risk_signals")
    op.drop_index("ix_risk_signals_user_id_kind", table_name="risk_signals")
    op.drop_index("ix_risk_signals_kind_value_at", table_name="risk_signals")
    op.drop_table("risk_signals")
