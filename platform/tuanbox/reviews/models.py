"""The reviews table: one rating (1–5) and a short text per picked-up order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, TimestampMixin

MAX_TEXT = 500


class Review(TimestampMixin, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        # The campaign page lists a product's reviews, newest first.
        Index("ix_reviews_product_created", "product_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # One review per order: the order is the proof of purchase and pickup.
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(String(MAX_TEXT), default="")
    # Written later from the merchant console.
    merchant_reply: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    replied_at: Mapped[datetime | None]
