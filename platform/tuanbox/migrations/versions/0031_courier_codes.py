"""Courier codes encrypted at rest: `compartment_bookings.deposit_code` and `retrieval_code`
(in clear) become `deposit_code_enc` and `retrieval_code_enc`, AES-GCM under the PII key
(`tuanbox.fulfilment.codes`, context `booking:{ref}:{kind}`); existing rows are encrypted
here, so the migration runs with the deployment's TUANBOX_PII_KEY. The downgrade decrypts
them back (older key ids through TUANBOX_PII_KEYS).

Also `sms_outbox`: texts decided in a transaction (the pickup code), sent by the worker after
the commit, once per unique key, their payload encrypted until sent
(`tuanbox.notifications.outbox`).

Revision ID: 0031_courier_codes
Revises: 0030_recommendations
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_courier_codes"
down_revision: str | None = "0030_recommendations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (("deposit_code", "deposit"), ("retrieval_code", "retrieval"))


def _cipher():
    from tuanbox.crypto import PiiCipher
    from tuanbox.settings import Settings

    return PiiCipher(Settings())


def _convert(source: str, target: str, transform) -> None:
    """Copy both codes of every booking from the `source` columns (suffix) to `target` ones."""
    conn = op.get_bind()
    columns = ", ".join(f"{column}{source}" for column, _ in KINDS)
    # Column names from KINDS and fixed suffixes only.
    query = f"SELECT id, ref, {columns} FROM compartment_bookings"  # noqa: S608
    rows = conn.execute(sa.text(query)).all()
    for row in rows:
        values = {
            column: None if row[2 + i] is None else transform(row[1], kind, row[2 + i])
            for i, (column, kind) in enumerate(KINDS)
        }
        conn.execute(
            sa.text(
                f"UPDATE compartment_bookings SET deposit_code{target} = :deposit_code,"  # noqa: S608
                f" retrieval_code{target} = :retrieval_code WHERE id = :id"
            ),
            {**values, "id": row[0]},
        )


BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_outbox",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("payload_enc", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("notification_id", BIG, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed')", name=op.f("ck_sms_outbox_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_sms_outbox_key")),
    )
    op.create_index("ix_sms_outbox_due", "sms_outbox", ["state", "next_attempt_at"])
    op.create_index(op.f("ix_sms_outbox_user_id"), "sms_outbox", ["user_id"])
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.add_column(sa.Column("deposit_code_enc", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("retrieval_code_enc", sa.String(length=200), nullable=True))
    cipher = _cipher()
    _convert(
        "", "_enc", lambda ref, kind, code: cipher.encrypt(code, context=f"booking:{ref}:{kind}")
    )
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.alter_column("deposit_code_enc", existing_type=sa.String(200), nullable=False)
        batch.drop_column("deposit_code")
        batch.drop_column("retrieval_code")


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_outbox_user_id"), table_name="sms_outbox")
    op.drop_index("ix_sms_outbox_due", table_name="sms_outbox")
    op.drop_table("sms_outbox")
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.add_column(sa.Column("deposit_code", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("retrieval_code", sa.String(length=12), nullable=True))
    cipher = _cipher()
    _convert(
        "_enc", "", lambda ref, kind, token: cipher.decrypt(token, context=f"booking:{ref}:{kind}")
    )
    with op.batch_alter_table("compartment_bookings") as batch:
        batch.alter_column("deposit_code", existing_type=sa.String(12), nullable=False)
        batch.drop_column("deposit_code_enc")
        batch.drop_column("retrieval_code_enc")
