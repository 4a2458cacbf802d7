"""Request and response bodies of the orders API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from tuanbox.orders.domain import OrderStatus


class OrderIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sku_id": "sku-3f1c…", "qty": 2, "station_id": "st-001"}]}
    )

    sku_id: str = Field(min_length=1, max_length=36)
    qty: int = Field(gt=0, le=100, examples=[2])
    station_id: str | None = Field(default=None, max_length=36)


class CancelIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "ordered the wrong size"}]}
    )

    reason: str = Field(default="cancelled by shopper", min_length=1, max_length=500)


class TransitionIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to": "quality_hold", "reason": "lot recalled by farm"}]}
    )

    to: OrderStatus
    reason: str = Field(min_length=3, max_length=500)


class WaveOut(BaseModel):
    """A station's daily courier run: orders confirmed before the cutoff ship in it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    station_id: str
    wave_date: date
    cutoff_at: datetime
    departs_at: datetime
    allocate_at: datetime
    allocated_at: datetime | None


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    merchant_id: str
    sku_id: str
    qty: int
    unit_price_cents: int
    total_cents: int
    discount_cents: int = Field(default=0, description="Coupons and points off at checkout")
    delivery_fee_cents: int = Field(
        default=0, description="Delivery to the locker, paid on top (0: waived or none set)"
    )
    due_cents: int = Field(default=0, description="What is paid: total - discount + delivery fee")
    paid_cents: int
    refunded_cents: int
    status: str
    kind: str
    group_id: str | None
    station_id: str | None
    pay_deadline: datetime | None
    paid_at: datetime | None
    picked_up_at: datetime | None
    created_at: datetime
    awaiting: str | None = Field(
        default=None, description="What a paid order waits for: group, merchant, receiving, station"
    )
    accept_deadline: datetime | None = None
    wave: WaveOut | None = Field(default=None, description="The delivery wave it ships in")


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    actor_id: str
    actor_role: str
    reason: str
    at: datetime
