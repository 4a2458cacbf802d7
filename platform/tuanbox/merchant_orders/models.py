"""Which merchant staff see shoppers' phones and names in clear in the console and exports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, utcnow


class PiiGrant(Base):
    """One staff account allowed to see personal data in clear (granted by an admin).

    Without a row, the console and its exports show phones as `138****8000` and names by
    their first character: what packing, pickup help and after-sales need.
    """

    __tablename__ = "console_pii_grants"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    granted_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderTabCount(Base):
    """How many of a merchant's orders a console status tab holds, up to the last compaction.

    Written only by `counters.compact_tab_counts` (and `listing.reconcile_tab_counts`), one
    transaction at a time under an advisory lock: the order write path never touches it. A
    tab's count is this row plus the merchant's pending `OrderTabDelta` rows, read in one
    statement (`listing.counted_tabs`). Migration 0036 replaced 0024's 1,024 slots per tab,
    which every order transaction upserted into and which could deadlock.
    """

    __tablename__ = "order_tab_counts"

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tab: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class OrderTabDelta(Base):
    """A signed change of a merchant's tab count, appended by an order write (PostgreSQL).

    The statement triggers `trg_orders_tab_counts_*` (migration 0036) INSERT one row per
    merchant and tab a statement moves, in the same transaction as every insert, delete or
    change of an order's status, `awaiting`, `picked_up_at` or merchant, whoever makes it
    (the state machine, hooks, raw SQL). Inserting new rows takes no lock another order
    transaction waits for, so counting cannot deadlock. Compaction deletes the rows it folds
    into `OrderTabCount`. SQLite has no trigger: counts are taken from the orders.
    """

    __tablename__ = "order_tab_deltas"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True
    )
    merchant_id: Mapped[str] = mapped_column(String(36), index=True)
    tab: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
