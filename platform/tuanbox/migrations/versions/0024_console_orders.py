"""Merchant console orders: list indexes, and which staff see personal data in clear.

`ix_orders_merchant_created` (merchant_id, created_at, id) serves the keyset pages of the
console's order list and its exports; `ix_orders_merchant_status_created` (merchant_id,
status, created_at, id) serves a status tab's page and the tab counts. Both are scanned
backwards for "newest first". On a large live table, create them CONCURRENTLY by hand
before upgrading (same names), and this migration's IF NOT EXISTS finds them there.

`console_pii_grants` holds the merchant staff an admin allowed to see shoppers' phones and
names in clear (the console and its exports mask them otherwise).

`order_tab_counts` holds each merchant's order count per console status tab (up to 1,024
slots per tab, one per transaction id modulo 1,024, summed on read), kept on PostgreSQL by the statement triggers `trg_orders_tab_counts_*`
(transition tables: one upsert per merchant, tab and slot a statement moves) in the same
transaction as any insert, delete or change of an order's status, awaiting, picked_up_at or
merchant; `order_tab_of` maps an order to its tab exactly as `merchant_orders.tabs.tab_of`.
Existing orders are counted here (into slot 0). SQLite gets the table but no trigger (the
console counts its orders there).

Revision ID: 0024_console_orders
Revises: 0023_console
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_console_orders"
down_revision: str | None = "0023_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TAB_OF = """
CREATE OR REPLACE FUNCTION order_tab_of(status text, awaiting text, picked_up boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT CASE
  WHEN status = 'pending_payment' THEN 'pending_payment'
  WHEN status = 'paid' AND awaiting IS NOT DISTINCT FROM 'group' THEN 'grouping'
  WHEN status IN ('paid', 'confirmed', 'allocated', 'quality_hold') THEN 'to_ship'
  WHEN status = 'ready_for_pickup' THEN 'awaiting_pickup'
  WHEN status IN ('picked_up', 'completed') THEN 'completed'
  WHEN status IN ('return_requested', 'returned') THEN 'after_sales'
  WHEN status = 'refunded' AND picked_up THEN 'after_sales'
  WHEN status IN ('cancelled', 'expired', 'refunded') THEN 'closed'
END
$$
"""

# Statement-level triggers with transition tables: one upsert per (merchant, tab, slot) a
# statement moves, however many rows it touches (a COPY of a million orders is ~1,400
# upserts, not a million on the same few rows).
MOVE = """
CREATE OR REPLACE FUNCTION order_tab_counts_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO order_tab_counts AS c (merchant_id, tab, slot, n)
    SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL),
           txid_current() & 1023, count(*)
    FROM new_orders GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (merchant_id, tab, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO order_tab_counts AS c (merchant_id, tab, slot, n)
    SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL),
           txid_current() & 1023, -count(*)
    FROM old_orders GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (merchant_id, tab, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    INSERT INTO order_tab_counts AS c (merchant_id, tab, slot, n)
    SELECT merchant_id, tab, slot, sum(d) FROM (
      SELECT o.merchant_id, order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL)
               AS tab, txid_current() & 1023 AS slot, -1 AS d
      FROM old_orders o JOIN new_orders n USING (id)
      WHERE order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL)
            IS DISTINCT FROM order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL)
         OR o.merchant_id <> n.merchant_id
      UNION ALL
      SELECT n.merchant_id, order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL),
             txid_current() & 1023, 1
      FROM old_orders o JOIN new_orders n USING (id)
      WHERE order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL)
            IS DISTINCT FROM order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL)
         OR o.merchant_id <> n.merchant_id
    ) AS moved GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (merchant_id, tab, slot) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END
$$
"""

TRIGGERS = (
    "CREATE TRIGGER trg_orders_tab_counts_ins AFTER INSERT ON orders"
    " REFERENCING NEW TABLE AS new_orders"
    " FOR EACH STATEMENT EXECUTE FUNCTION order_tab_counts_move()",
    "CREATE TRIGGER trg_orders_tab_counts_upd AFTER UPDATE ON orders"
    " REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders"
    " FOR EACH STATEMENT EXECUTE FUNCTION order_tab_counts_move()",
    "CREATE TRIGGER trg_orders_tab_counts_del AFTER DELETE ON orders"
    " REFERENCING OLD TABLE AS old_orders"
    " FOR EACH STATEMENT EXECUTE FUNCTION order_tab_counts_move()",
)


def upgrade() -> None:
    op.create_table(
        "console_pii_grants",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_console_pii_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_pii_grants")),
    )
    op.create_index(
        "ix_orders_merchant_created",
        "orders",
        ["merchant_id", "created_at", "id"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_orders_merchant_status_created",
        "orders",
        ["merchant_id", "status", "created_at", "id"],
        if_not_exists=True,
    )
    op.create_table(
        "order_tab_counts",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("tab", sa.String(length=20), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "tab", "slot", name=op.f("pk_order_tab_counts")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAB_OF)
        op.execute(MOVE)
        for trigger in TRIGGERS:
            op.execute(trigger)
        op.execute(
            "INSERT INTO order_tab_counts (merchant_id, tab, slot, n) "
            "SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL), 0, "
            "count(*) FROM orders GROUP BY 1, 2"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for suffix in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_orders_tab_counts_{suffix} ON orders")
        op.execute("DROP FUNCTION IF EXISTS order_tab_counts_move()")
        op.execute("DROP FUNCTION IF EXISTS order_tab_of(text, text, boolean)")
    op.drop_table("order_tab_counts")
    op.drop_index("ix_orders_merchant_status_created", table_name="orders")
    op.drop_index("ix_orders_merchant_created", table_name="orders")
    op.drop_table("console_pii_grants")
