"""The points ledger, each shopper's cached balance, and what each order earned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow


class PointsAccount(Base):
    """The balance cached beside the ledger, changed in the same transaction as each entry.

    `debt` is what a refund could not take back because the points were already spent: the
    next points earned pay it first, so the balance never goes below zero."""

    __tablename__ = "points_accounts"
    __table_args__ = (CheckConstraint("balance >= 0 AND debt >= 0", name="never_negative"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInt, default=0)
    debt: Mapped[int] = mapped_column(BigInt, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PointsEntry(Base):
    """One change of a balance; the unique key makes every change happen at most once."""

    __tablename__ = "points_ledger"
    __table_args__ = (Index("ix_points_ledger_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # earn | reverse | spend | return | redeem
    kind: Mapped[str] = mapped_column(String(12))
    delta: Mapped[int] = mapped_column(BigInt)  # change of the balance
    debt_delta: Mapped[int] = mapped_column(BigInt, default=0)  # change of the debt
    order_id: Mapped[str | None] = mapped_column(String(36), index=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderPoints(Base):
    """Points an order earned when it completed, on what base, and how many were reversed."""

    __tablename__ = "order_points"
    __table_args__ = (
        CheckConstraint("earned >= 0 AND reversed >= 0 AND reversed <= earned", name="range"),
    )

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36))
    earned: Mapped[int] = mapped_column(BigInt)
    # Net cents paid when it completed, and the refunds already counted then.
    base_cents: Mapped[int] = mapped_column(BigInt)
    refunded_base_cents: Mapped[int] = mapped_column(BigInt)
    reversed: Mapped[int] = mapped_column(BigInt, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)
