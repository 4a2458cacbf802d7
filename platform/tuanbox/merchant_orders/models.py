"""Which merchant staff see shoppers' phones and names in clear in the console and exports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, SmallInteger, String
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
    """How many of a merchant's orders a console status tab holds, in up to 1,024 slots.

    Kept by the PostgreSQL statement triggers `trg_orders_tab_counts_*` (migration
    0024_console_orders, transition tables: one upsert per merchant, tab and slot a statement
    moves) in the same transaction as every insert, delete or change of an order's status,
    `awaiting`, `picked_up_at` or merchant, whoever makes it (the state machine, hooks, raw SQL). An
    transaction writes its counts in slot `txid_current() & 1023`: two transactions share
    counter rows only when their ids are equal modulo 1,024. Per order (`hashtext(id) & 15`,
    the first design) two transactions each writing a few orders of one merchant locked shared
    counter rows in opposite orders and deadlocked (the group-buy chaos and stock-pool race
    tests saw it). A tab's count is the sum of its slots. `listing.reconcile_tab_counts`
    rebuilds them from the orders. SQLite has no trigger: counts are taken from the orders.
    """

    __tablename__ = "order_tab_counts"

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tab: Mapped[str] = mapped_column(String(20), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
