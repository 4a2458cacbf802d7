"""Recommendation tables: a derived read model of picked-up orders (no foreign keys: it is
rebuilt from orders at will, and a deleted product just stops being shown)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow


class RecOrder(Base):
    """The per-order marker: an order counted once (a replayed hook finds its row) and taken
    back once (``reversed_at``) when it is returned; what it added is kept to take it back."""

    __tablename__ = "rec_orders"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36))
    product_id: Mapped[str] = mapped_column(String(36))
    station_id: Mapped[str | None] = mapped_column(String(36))
    day: Mapped[date] = mapped_column()
    counted_at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column()


class RecUserItem(Base):
    """How many kept orders a shopper has of a product (a product is in their history while
    this is above zero; the row goes at zero)."""

    __tablename__ = "rec_user_items"
    __table_args__ = (CheckConstraint("orders > 0", name="positive"),)

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInt)


class RecItem(Base):
    """Shoppers who have bought a product (cosine's denominator)."""

    __tablename__ = "rec_items"
    __table_args__ = (CheckConstraint("buyers >= 0", name="not_negative"),)

    product_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    buyers: Mapped[int] = mapped_column(BigInt)


class RecPair(Base):
    """Shoppers who have bought both products; stored both ways (a, b) and (b, a), so the
    neighbours of one product are one primary-key range."""

    __tablename__ = "rec_pairs"
    __table_args__ = (CheckConstraint("shoppers >= 0", name="not_negative"),)

    product_a: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_b: Mapped[str] = mapped_column(String(36), primary_key=True)
    shoppers: Mapped[int] = mapped_column(BigInt)


class RecStationDay(Base):
    """Picked-up (and kept) orders of a product at a station on a day (UTC): popularity."""

    __tablename__ = "rec_station_days"
    __table_args__ = (
        CheckConstraint("orders >= 0", name="not_negative"),
        Index("ix_rec_station_days_station_day", "station_id", "day"),
    )

    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    product_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInt)
