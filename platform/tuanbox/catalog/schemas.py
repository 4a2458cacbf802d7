"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tuanbox.bounds import PriceCents, RestockUnits, Stock
from tuanbox.catalog.models import SizeClass, Zone


class MerchantIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "绿源农场", "licence_number": "91310000MA1FL0XX1X", "verified": False}
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200, examples=["绿源农场"])
    licence_number: str = Field(min_length=3, max_length=100, examples=["91310000MA1FL0XX1X"])
    verified: bool = False


class VerificationIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"verified": True, "reason": "licence checked against SAMR register"}]
        }
    )

    verified: bool
    reason: str = Field(min_length=3, max_length=500)


class MerchantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    licence_number: str
    verified: bool


class ProductIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "有机草莓 500g",
                    "description": "Picked the morning of dispatch; keep chilled.",
                    "size_class": "S",
                    "zone": "chilled",
                    "returnable": False,
                    "gtin": "09506000134352",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200, examples=["有机草莓 500g"])
    description: str = Field(default="", max_length=5000)
    size_class: SizeClass = SizeClass.M
    zone: Zone = Zone.AMBIENT
    returnable: bool = True
    gtin: str | None = Field(
        default=None, pattern=r"^\d{8}(\d{4,6})?$", examples=["09506000134352"]
    )


class SkuIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "500g box", "price_cents": 2990, "stock_on_hand": 200}]
        }
    )

    name: str = Field(min_length=1, max_length=200, examples=["500g box"])
    price_cents: PriceCents
    stock_on_hand: Stock = 0


class RestockIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"add": 50}]})

    add: RestockUnits


class SkuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    product_id: str
    name: str
    price_cents: int
    stock_on_hand: int
    stock_reserved: int
    active: bool


class LotIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_code": "B2026-11-28",
                    "gtin": "09506000134352",
                    "harvested_at": "2026-11-28T05:30:00Z",
                    "best_before": "2026-12-03T00:00:00Z",
                    "farm": "Green Valley Farm, plot 4",
                    "origin": "Dandong, Liaoning",
                    "quantity": 400,
                }
            ]
        }
    )

    lot_code: str = Field(
        min_length=1, max_length=20, pattern=r"^[!-~]+$", examples=["B2026-11-28"]
    )
    gtin: str | None = Field(default=None, pattern=r"^\d{8}(\d{4,6})?$")
    harvested_at: datetime | None = None
    best_before: datetime | None = None
    farm: str | None = Field(default=None, max_length=200)
    origin: str | None = Field(default=None, max_length=200)
    quantity: Stock | None = None


class LotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    product_id: str
    gtin: str
    lot_code: str
    harvested_at: datetime | None
    best_before: datetime | None
    farm: str | None
    origin: str | None
    quantity: int | None
    trace_path: str = ""


class ImageOut(BaseModel):
    id: str
    url: str
    content_type: str
    size_bytes: int


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    name: str
    description: str
    size_class: str
    zone: str
    returnable: bool
    gtin: str | None


class ProductPage(ProductOut):
    merchant: MerchantOut
    skus: list[SkuOut]
    lots: list[LotOut]
    images: list[ImageOut]


class ProductList(BaseModel):
    items: list[ProductOut]
    page: int
    page_size: int
    total: int
