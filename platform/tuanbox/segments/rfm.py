"""RFM scores recomputed set-based: one statement for every merchant's scope, one global.

Quintiles are `ntile(5)` over the buyers of a scope ordered by the measure (ties broken by
user id, so a rerun on the same orders writes the same scores): 5 is the most recent, most
frequent, highest spending fifth. Counted orders are paid and not cancelled or refunded;
money is what was paid less what was refunded. Buyers with no counted order any more lose
their row, and so do erased accounts (their orders stay for the books, their profile goes).
Computed tags follow the scores in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.segments.models import GLOBAL

# Statuses whose orders count as bought (paid and not taken back).
COUNTED = (
    "paid",
    "confirmed",
    "allocated",
    "ready_for_pickup",
    "picked_up",
    "completed",
    "quality_hold",
    "return_requested",
)
_COUNTED_SQL = ", ".join(f"'{s}'" for s in COUNTED)

# The computed tags and the scores they follow from (recomputed with the scores).
HIGH_VALUE = "high_value"
DORMANT = "dormant_30d"
NEW_BUYER = "new_buyer"


def _upsert(scope_expr: str, group: str) -> str:
    """One INSERT ... SELECT with window functions over the scopes' buyers."""
    # Only our own constants are formatted in (scope and grouping expressions, statuses).
    return f"""
        WITH agg AS (
            SELECT {scope_expr} AS scope, user_id, max(paid_at) AS last_paid_at,
                   count(*) AS frequency, sum(paid_cents - refunded_cents) AS monetary_cents
            FROM orders
            WHERE paid_at IS NOT NULL AND status IN ({_COUNTED_SQL})
              AND user_id NOT IN (SELECT id FROM users WHERE erased_at IS NOT NULL)
            GROUP BY {group}
        )
        INSERT INTO rfm_scores
            (scope, user_id, last_paid_at, frequency, monetary_cents, r, f, m, computed_at)
        SELECT scope, user_id, last_paid_at, frequency, monetary_cents,
               ntile(5) OVER (PARTITION BY scope ORDER BY last_paid_at, user_id),
               ntile(5) OVER (PARTITION BY scope ORDER BY frequency, user_id),
               ntile(5) OVER (PARTITION BY scope ORDER BY monetary_cents, user_id),
               :now
        FROM agg
        WHERE true
        ON CONFLICT (scope, user_id) DO UPDATE SET
            last_paid_at = excluded.last_paid_at, frequency = excluded.frequency,
            monetary_cents = excluded.monetary_cents, r = excluded.r, f = excluded.f,
            m = excluded.m, computed_at = excluded.computed_at
    """  # noqa: S608


def _count(result: object) -> int:
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Recomputed:
    scores: int
    tags: int


def recompute(session: Session, now: datetime | None = None) -> Recomputed:
    """Recompute every scope's scores and computed tags; idempotent, a few statements."""
    now = now or utcnow()
    # Serialise concurrent runs (beat overlap): the second waits and rewrites the same rows.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('segments.rfm'))"))
    merchants = _count(
        session.execute(text(_upsert("merchant_id", "merchant_id, user_id")), {"now": now})
    )
    everyone = _count(session.execute(text(_upsert(f"'{GLOBAL}'", "user_id")), {"now": now}))
    session.execute(text("DELETE FROM rfm_scores WHERE computed_at < :now"), {"now": now})
    session.execute(text("DELETE FROM user_tags WHERE source = 'computed'"))
    dormant_before = now - timedelta(days=30)
    tags = _count(
        session.execute(
            text(
                """
            INSERT INTO user_tags (merchant_id, user_id, tag, source, created_at)
            SELECT scope, user_id,
                   CASE WHEN r >= 4 AND m >= 4 THEN :high
                        WHEN last_paid_at < :dormant THEN :dormant_tag
                        ELSE :new END,
                   'computed', :now
            FROM rfm_scores
            WHERE scope <> :everyone AND computed_at = :now
              AND ((r >= 4 AND m >= 4) OR last_paid_at < :dormant OR frequency = 1)
            ON CONFLICT DO NOTHING
            """
            ),
            {
                "high": HIGH_VALUE,
                "dormant": dormant_before,
                "dormant_tag": DORMANT,
                "new": NEW_BUYER,
                "now": now,
                "everyone": GLOBAL,
            },
        )
    )
    return Recomputed(scores=merchants + everyone, tags=tags)
