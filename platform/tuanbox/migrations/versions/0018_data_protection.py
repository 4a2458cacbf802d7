"""Data protection: encrypted display names, erased accounts, encrypted idempotent replies.

`users.display_name_enc` holds names encrypted (the plaintext column stays for rows written
before; `tuanbox pii rotate`, or the beat-started sweep, moves them over and clears it),
`users.erased_at` marks accounts a shopper erased, `idempotency_keys.response_enc` keeps
stored replies encrypted, and `pii_rotations` records each key rotation's progress.

Revision ID: 0018_data_protection
Revises: 0017_risk
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_data_protection"
down_revision: str | None = "0017_risk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("display_name_enc", sa.Text(), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_enc", sa.Text(), nullable=True))
    op.create_table(
        "pii_rotations",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursors", sa.JSON(), nullable=False),
        sa.Column("rotated", BigInt, nullable=False),
        sa.Column("skipped", BigInt, nullable=False),
        sa.Column("failed", BigInt, nullable=False),
        sa.Column("remaining", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_pii_rotations")),
    )


def downgrade() -> None:
    op.drop_table("pii_rotations")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_enc")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("display_name_enc")
