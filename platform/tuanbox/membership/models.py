"""Membership tables: each paid term (its payment intent is the row id), the member's
current window, the ledger of money and days, and member prices per SKU."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow


class Membership(Base):
    """A shopper's membership window: a member while `starts_at <= now < ends_at`. Each paid
    term extends `ends_at` from where it was (renewal before expiry loses no day)."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("starts_at <= ends_at", name="window_order"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MembershipTerm(TimestampMixin, Base):
    """One purchase or renewal: pending until its payment succeeds, then paid (its term set),
    then maybe refunded (pro rata by whole days left) or expired. Its id is the payment
    intent id the provider echoes back, and `(provider, txn_id)` is unique: one payment,
    one term."""

    __tablename__ = "membership_terms"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'expired')", name="status_known"
        ),
        CheckConstraint("amount_cents > 0 AND days > 0", name="positive"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refund"),
        Index("ix_membership_terms_user_id_status", "user_id", "status"),
        Index("uq_membership_terms_provider_txn", "provider", "txn_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(16))
    txn_id: Mapped[str | None] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInt)
    days: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default="pending")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    refunded_cents: Mapped[int] = mapped_column(BigInt, default=0)
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))


class MembershipEntry(Base):
    """The membership ledger: paid, refunded, expired; one row per key, cents and days."""

    __tablename__ = "membership_ledger"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    term_id: Mapped[str] = mapped_column(ForeignKey("membership_terms.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    cents: Mapped[int] = mapped_column(BigInt)
    days: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MemberPrice(Base):
    """What a member pays for a SKU (below its price); others pay the SKU's price."""

    __tablename__ = "member_prices"
    __table_args__ = (CheckConstraint("price_cents > 0", name="price_positive"),)

    sku_id: Mapped[str] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), primary_key=True)
    price_cents: Mapped[int] = mapped_column(BigInt)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
