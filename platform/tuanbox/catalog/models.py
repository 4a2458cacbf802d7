"""Merchants, products, SKUs (stock with reservations), lots (GTIN + lot code) and images."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin


class SizeClass(StrEnum):
    S = "S"
    M = "M"
    L = "L"


class Zone(StrEnum):
    AMBIENT = "ambient"
    CHILLED = "chilled"
    FROZEN = "frozen"


class Merchant(TimestampMixin, Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint("order_acceptance IN ('auto', 'manual')", name="order_acceptance_known"),
        CheckConstraint("acceptance_lapse IN ('confirm', 'refund')", name="acceptance_lapse_known"),
        CheckConstraint(
            "acceptance_window_s BETWEEN 60 AND 604800", name="acceptance_window_bounded"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    licence_number: Mapped[str] = mapped_column(String(100), unique=True)
    verified: Mapped[bool] = mapped_column(default=False)
    # How paid regular and flash-sale orders get confirmed (`tuanbox.orders.acceptance`):
    # "auto" on payment, or "manual": staff accept each within the window, and past it the
    # lapse policy ("confirm" or "refund") decides.
    order_acceptance: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    acceptance_window_s: Mapped[int] = mapped_column(default=7200, server_default="7200")
    acceptance_lapse: Mapped[str] = mapped_column(
        String(8), default="refund", server_default="refund"
    )


class Product(TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("size_class IN ('S', 'M', 'L')", name="size_class_known"),
        CheckConstraint("zone IN ('ambient', 'chilled', 'frozen')", name="zone_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    size_class: Mapped[str] = mapped_column(String(1), default=SizeClass.M)
    zone: Mapped[str] = mapped_column(String(10), default=Zone.AMBIENT)
    returnable: Mapped[bool] = mapped_column(default=True)
    gtin: Mapped[str | None] = mapped_column(String(14), index=True)


class Sku(TimestampMixin, Base):
    __tablename__ = "skus"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_nonnegative"),
        CheckConstraint("stock_on_hand >= 0", name="on_hand_nonnegative"),
        CheckConstraint("stock_reserved >= 0", name="reserved_nonnegative"),
        CheckConstraint("stock_reserved <= stock_on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInt)
    stock_on_hand: Mapped[int] = mapped_column(BigInt, default=0)
    stock_reserved: Mapped[int] = mapped_column(BigInt, default=0)
    active: Mapped[bool] = mapped_column(default=True)


class Lot(TimestampMixin, Base):
    """A product batch; GTIN + lot code is the key traceability events use."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("gtin", "lot_code"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    gtin: Mapped[str] = mapped_column(String(14))
    lot_code: Mapped[str] = mapped_column(String(20))
    harvested_at: Mapped[datetime | None]
    best_before: Mapped[datetime | None]
    farm: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int | None] = mapped_column(BigInt)


class ProductImage(TimestampMixin, Base):
    """An image file under the media dir, named by its content hash (so cacheable forever)."""

    __tablename__ = "product_images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(100))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)


class MerchantLicence(TimestampMixin, Base):
    """A licence document a merchant's staff uploaded, and ops' review of it.

    The file lives under ``<media_dir>/licences/`` (never served by ``/media``: only the
    merchant's staff and ops see it). Approving one marks the merchant verified, which is
    what shoppers see ("Verified" beside the merchant's name)."""

    __tablename__ = "merchant_licences"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    filename: Mapped[str] = mapped_column(String(100))
    original_name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInt)
    uploaded_by: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(36))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(String(500))
