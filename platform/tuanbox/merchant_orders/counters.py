"""Console tab counts kept without a shared row on the order write path (PostgreSQL).

Write path: the statement triggers on `orders` (migration 0036) only INSERT signed deltas
into `order_tab_deltas`, one row per merchant and tab a statement moves. New rows are seen by
no other transaction before commit and no row is updated, so an order transaction takes no
row lock for its counts and never waits on (or deadlocks with) another one's counts.

Compaction (`compact_tab_counts`, Celery beat every `COMPACT_EVERY_S`): in one transaction,
`DELETE FROM order_tab_deltas ... RETURNING` the committed deltas it sees and add them into
`order_tab_counts` (one row per merchant and tab). Deltas of transactions still open are not
visible to it and stay for the next run. The delete and the additions commit together, so a
reader sees a delta either pending or folded, never both and never neither. Compactions run
one at a time: a transaction advisory lock (`pg_try_advisory_xact_lock`; one that finds it
taken does nothing), which reconciliation takes too.

Read (`listing.counted_tabs`): counters plus the merchant's pending deltas, summed in ONE
statement (one snapshot: in READ COMMITTED two statements could straddle a compaction's
commit and count its deltas twice or not at all). Its cost is the merchant's seven counter
rows plus its deltas since the last compaction (an index scan on merchant_id): with beat down
reads stay exact but grow slower, and the next compaction catches up.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# Beat period of `merchant_orders.compact_tab_counts`.
COMPACT_EVERY_S = 5.0
# Deltas folded per transaction (a long backlog is folded in several short transactions).
BATCH = 50_000

LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('merchant_orders.tab_counts'))")
WAIT_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('merchant_orders.tab_counts'))")

# The oldest `:batch` deltas (a sequence-ordered id) leave the table and are added into the
# counters, in one statement; ORDER BY keeps the counter rows' lock order fixed anyway.
COMPACT = text(
    """
WITH moved AS (
  DELETE FROM order_tab_deltas
  WHERE id IN (SELECT id FROM order_tab_deltas ORDER BY id LIMIT :batch)
  RETURNING merchant_id, tab, n
), summed AS (
  SELECT merchant_id, tab, sum(n) AS n FROM moved GROUP BY 1, 2
), folded AS (
  INSERT INTO order_tab_counts AS c (merchant_id, tab, n)
  SELECT merchant_id, tab, n FROM summed ORDER BY 1, 2
  ON CONFLICT (merchant_id, tab) DO UPDATE SET n = c.n + EXCLUDED.n
  RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM folded)
"""
)


def fold_deltas(session: Session, batch: int = BATCH) -> int:
    """Fold up to `batch` pending deltas into the counters; the caller holds the lock (or
    the table) and commits. Returns how many deltas were folded."""
    moved, _ = session.execute(COMPACT, {"batch": batch}).one()
    return int(moved)


def compact_tab_counts(session: Session, batch: int = BATCH) -> int | None:
    """One compaction transaction's work: fold up to `batch` deltas into `order_tab_counts`.

    Returns how many deltas it folded, or None when another compaction (or reconciliation)
    holds the lock. The caller commits (the lock is released with the transaction).
    SQLite keeps no counters: 0."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    if not session.scalar(LOCK):
        return None
    return fold_deltas(session, batch)
