"""Console tab counts without shared-row writes: the order triggers append deltas.

Before (0024), the statement triggers `trg_orders_tab_counts_*` upserted `n = n + moved`
into `order_tab_counts` rows shared by every transaction of a merchant (one of 1,024 slots
per transaction id): two transactions whose ids met modulo 1,024, or that moved several
merchants or tabs in different orders, could wait on each other's counter rows and deadlock.

Now the triggers only INSERT into `order_tab_deltas` (merchant, tab, signed count; one row
per merchant and tab a statement moves). An insert of a new row takes no row lock any other
transaction waits for, and the write path updates no shared row at all, so it cannot take
part in a deadlock. `order_tab_counts` loses its slots (one row per merchant and tab) and is
written only by compaction (`merchant_orders.counters.compact_tab_counts`, Celery beat
`merchant_orders.compact_tab_counts`): in one transaction, under a transaction advisory
lock, DELETE ... RETURNING the deltas it sees and add them into the counters. A read is the
counters plus the merchant's pending deltas in one statement (one snapshot), so it is exact
whether or not compaction has run. The delta table is logged: an unlogged one would lose
committed counts in a crash and is not on the read replica.

Upgrade folds the 1,024 slots into one row per merchant and tab; downgrade folds pending
deltas into slot 1 (the counters are slot 0) and puts back 0024's trigger function. SQLite
gets the table, no trigger.

Revision ID: 0036_tab_count_deltas
Revises: 0032_delivery_fee
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036_tab_count_deltas"
down_revision: str | None = "0032_delivery_fee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# One INSERT per statement that moves orders between tabs: a row per merchant and tab it
# moves (transition tables, so a COPY of a million orders is a few thousand rows).
APPEND = """
CREATE OR REPLACE FUNCTION order_tab_counts_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO order_tab_deltas (merchant_id, tab, n)
    SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL), count(*)
    FROM new_orders GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO order_tab_deltas (merchant_id, tab, n)
    SELECT merchant_id, order_tab_of(status, awaiting, picked_up_at IS NOT NULL), -count(*)
    FROM old_orders GROUP BY 1, 2;
  ELSE
    INSERT INTO order_tab_deltas (merchant_id, tab, n)
    SELECT merchant_id, tab, sum(d) FROM (
      SELECT o.merchant_id,
             order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL) AS tab, -1 AS d
      FROM old_orders o JOIN new_orders n USING (id)
      WHERE order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL)
            IS DISTINCT FROM order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL)
         OR o.merchant_id <> n.merchant_id
      UNION ALL
      SELECT n.merchant_id, order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL), 1
      FROM old_orders o JOIN new_orders n USING (id)
      WHERE order_tab_of(o.status, o.awaiting, o.picked_up_at IS NOT NULL)
            IS DISTINCT FROM order_tab_of(n.status, n.awaiting, n.picked_up_at IS NOT NULL)
         OR o.merchant_id <> n.merchant_id
    ) AS moved GROUP BY 1, 2 HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END
$$
"""

# 0024's function, for the downgrade.
UPSERT = """
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


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "order_tab_deltas",
        sa.Column("id", _BIG, sa.Identity(always=False), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("tab", sa.String(length=20), nullable=False),
        sa.Column("n", _BIG, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tab_deltas")),
    )
    op.create_index("ix_order_tab_deltas_merchant_id", "order_tab_deltas", ["merchant_id"])
    if postgres:
        # Rows live seconds (until the next compaction): vacuum it by dead rows, not by share.
        op.execute(
            "ALTER TABLE order_tab_deltas SET (autovacuum_vacuum_scale_factor = 0,"
            " autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0,"
            " autovacuum_analyze_threshold = 5000)"
        )
        # No order write moves a counter while the slots are folded (they wait, not fail).
        op.execute("LOCK TABLE order_tab_counts IN EXCLUSIVE MODE")
        op.execute(APPEND)
    op.execute(
        "CREATE TABLE order_tab_counts_folded AS SELECT merchant_id, tab, sum(n) AS n"
        " FROM order_tab_counts GROUP BY merchant_id, tab"
    )
    op.execute("DELETE FROM order_tab_counts")
    with op.batch_alter_table("order_tab_counts") as batch:
        batch.drop_constraint("pk_order_tab_counts", type_="primary")
        batch.drop_column("slot")
        batch.create_primary_key("pk_order_tab_counts", ["merchant_id", "tab"])
    op.execute(
        "INSERT INTO order_tab_counts (merchant_id, tab, n)"
        " SELECT merchant_id, tab, n FROM order_tab_counts_folded"
    )
    op.execute("DROP TABLE order_tab_counts_folded")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("LOCK TABLE order_tab_deltas IN EXCLUSIVE MODE")
        op.execute("LOCK TABLE order_tab_counts IN EXCLUSIVE MODE")
    with op.batch_alter_table("order_tab_counts") as batch:
        batch.add_column(sa.Column("slot", sa.SmallInteger(), server_default="0", nullable=False))
        batch.drop_constraint("pk_order_tab_counts", type_="primary")
        batch.create_primary_key("pk_order_tab_counts", ["merchant_id", "tab", "slot"])
    with op.batch_alter_table("order_tab_counts") as batch:
        batch.alter_column("slot", server_default=None)
    op.execute(
        "INSERT INTO order_tab_counts (merchant_id, tab, slot, n)"
        " SELECT merchant_id, tab, 1, sum(n) FROM order_tab_deltas GROUP BY merchant_id, tab"
    )
    if postgres:
        op.execute(UPSERT)
    op.drop_index("ix_order_tab_deltas_merchant_id", table_name="order_tab_deltas")
    op.drop_table("order_tab_deltas")
