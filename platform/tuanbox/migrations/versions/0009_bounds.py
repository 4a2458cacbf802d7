"""Bad input: BIGINT for money and counters, wider ciphertext columns.

Revision ID: 0009_bounds
Revises: 0008_inbound_failures
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_bounds"
down_revision: str | None = "0008_inbound_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money (cents) and unit counters that were INTEGER: a 100-unit order of a ¥1,000,000 item
# already overflowed 32 bits. Kept in step with tuanbox.db.base.BigInt on the models.
WIDENED: dict[str, tuple[str, ...]] = {
    "skus": ("price_cents", "stock_on_hand", "stock_reserved"),
    "lots": ("quantity",),
    "orders": ("qty", "unit_price_cents", "total_cents", "paid_cents", "refunded_cents"),
    "payment_intents": ("amount_cents",),
    "payments": ("amount_cents",),
    "refunds": ("amount_cents",),
    "simpay_ledger": ("amount_cents",),
    "gb_campaigns": ("leader_price_cents",),
    "gb_groups": ("join_seq", "final_unit_price_cents"),
    "gb_members": ("qty", "joined_seq"),
    "gb_user_quotas": ("qty",),
    "flash_sales": ("price_cents", "stock_cap", "remaining"),
    "flash_reservations": ("qty",),
    "flash_user_totals": ("qty",),
}


def _widen(to: sa.types.TypeEngine[int], was: sa.types.TypeEngine[int]) -> None:
    # SQLite stores INTEGER and BIGINT alike (64-bit) and the models declare INTEGER there
    # (tuanbox.db.base.BigInt): rebuilding fourteen tables would change only a name.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=to, existing_type=was)


def upgrade() -> None:
    _widen(sa.BigInteger(), sa.Integer())
    # Ciphertext is base64 of the UTF-8 bytes plus nonce and tag: 600 Chinese characters made
    # 2,4xx characters. The schema bounds the plaintext; the column holds any ciphertext.
    # No table references addresses, so SQLite may rebuild it.
    with op.batch_alter_table("addresses") as batch:
        batch.alter_column(
            "address_enc", type_=sa.Text(), existing_type=sa.String(2000), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("addresses") as batch:
        batch.alter_column(
            "address_enc", type_=sa.String(2000), existing_type=sa.Text(), existing_nullable=False
        )
    _widen(sa.Integer(), sa.BigInteger())
