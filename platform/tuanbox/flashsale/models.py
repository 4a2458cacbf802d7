"""Flash-sale tables: the sale with its remaining counter, reservations and per-user totals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow


class FlashSale(TimestampMixin, Base):
    __tablename__ = "flash_sales"
    __table_args__ = (
        # The record that can never oversell: the guarded UPDATE keeps this true, the
        # constraint makes any other writer fail loudly.
        CheckConstraint("remaining >= 0 AND remaining <= stock_cap", name="remaining_within"),
        CheckConstraint("per_user_limit >= 1", name="limit_positive"),
        CheckConstraint("ends_at > starts_at", name="window_valid"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    sku_id: Mapped[str] = mapped_column(ForeignKey("skus.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInt)
    stock_cap: Mapped[int] = mapped_column(BigInt)
    remaining: Mapped[int] = mapped_column(BigInt)
    per_user_limit: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(36))
    # Set when the ended sale gave its unsold units back to the SKU; nothing sells after.
    closed_at: Mapped[datetime | None]


class Reservation(Base):
    __tablename__ = "flash_reservations"
    __table_args__ = (
        UniqueConstraint("sale_id", "request_id"),
        CheckConstraint("status IN ('active', 'released')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sale_id: Mapped[str] = mapped_column(
        ForeignKey("flash_sales.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(BigInt)
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), unique=True
    )
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserTotal(Base):
    """Units a shopper holds in a sale; the DB's own per-user guard behind the Lua one."""

    __tablename__ = "flash_user_totals"
    __table_args__ = (CheckConstraint("qty >= 0", name="qty_nonnegative"),)

    sale_id: Mapped[str] = mapped_column(
        ForeignKey("flash_sales.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    qty: Mapped[int] = mapped_column(BigInt, default=0)


class Reminder(Base):
    """A shopper's "remind me" for an upcoming sale; ``sent_at`` is set in the transaction
    that records the notice, so each row is told at most once."""

    __tablename__ = "flash_sale_reminders"

    sale_id: Mapped[str] = mapped_column(
        ForeignKey("flash_sales.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
