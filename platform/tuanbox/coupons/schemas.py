"""Request and response bodies of the coupons and points API (every input bounded)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuanbox.bounds import MAX_ORDER_CENTS, Id

Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
MAX_POINTS = 10**9


class TemplateIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "¥5 off ¥39",
                    "kind": "amount_off",
                    "amount_off_cents": 500,
                    "threshold_cents": 3900,
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_until": "2036-01-01T00:00:00Z",
                    "merchant_id": "m-…",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    kind: Literal["amount_off", "percent_off"]
    amount_off_cents: int = Field(default=0, ge=0, le=MAX_ORDER_CENTS)
    percent_off: int = Field(default=0, ge=0, le=99)
    max_off_cents: int | None = Field(default=None, gt=0, le=MAX_ORDER_CENTS)
    threshold_cents: int = Field(default=0, ge=0, le=MAX_ORDER_CENTS)
    audience: Literal["all", "new_user", "wake_up"] = "all"
    per_user_limit: int = Field(default=1, ge=1, le=1000)
    total_limit: int | None = Field(default=None, ge=1, le=10**9)
    stackable: bool = False
    valid_from: datetime
    valid_until: datetime
    valid_days: int | None = Field(default=None, ge=1, le=3650)
    points_cost: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    # Staff: their own merchant (the default); ops: any merchant, or None for the platform's.
    merchant_id: Id | None = None

    @model_validator(mode="after")
    def _aware(self) -> TemplateIn:
        if self.valid_from.tzinfo is None or self.valid_until.tzinfo is None:
            raise ValueError("valid_from and valid_until need a time zone")
        if self.valid_from.year < 2000 or self.valid_until.year > 2200:
            raise ValueError("validity must fall between the years 2000 and 2200")
        return self


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str | None
    name: str
    kind: str
    amount_off_cents: int
    percent_off: int
    max_off_cents: int | None
    threshold_cents: int
    audience: str
    per_user_limit: int
    total_limit: int | None
    issued_count: int
    stackable: bool
    valid_from: datetime
    valid_until: datetime
    valid_days: int | None
    points_cost: int | None
    active: bool


class IssueIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"key": "spring-2026", "user_ids": ["u-…"]}]}
    )

    key: Key = Field(description="Issuance key: the same key never issues a user a second one")
    user_ids: list[Id] | None = Field(default=None, min_length=1, max_length=1000)
    rule: bool = Field(default=False, description="Issue to everyone the template's rule reaches")

    @model_validator(mode="after")
    def _one_way(self) -> IssueIn:
        if (self.user_ids is None) == (not self.rule):
            raise ValueError("give user_ids or rule: true (one of the two)")
        return self


class IssueOut(BaseModel):
    issued: int
    replayed: int
    skipped: dict[str, str] = Field(description="user id -> why not (limit, audience)")


class CouponOut(BaseModel):
    id: str
    template_id: str
    name: str
    kind: str
    amount_off_cents: int
    percent_off: int
    max_off_cents: int | None
    threshold_cents: int
    merchant_id: str | None
    stackable: bool
    status: str
    valid_from: datetime
    valid_until: datetime
    order_id: str | None


class ApplicableOut(BaseModel):
    coupon: CouponOut
    applicable: bool
    discount_cents: int = Field(description="What this coupon alone takes off the order")
    reason: str | None = Field(default=None, description="Why not, as a stable code")


class DiscountIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"coupon_ids": [], "points": 0}]})

    coupon_ids: list[Id] = Field(default_factory=list, max_length=5)
    points: int = Field(default=0, ge=0, le=MAX_POINTS)


class LineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line_no: int
    amount_cents: int
    coupon_cents: int
    points_cents: int
    refund_id: str | None


class DiscountOut(BaseModel):
    order_id: str
    total_cents: int
    coupon_cents: int
    points_used: int
    points_cents: int
    discount_cents: int
    delivery_fee_cents: int = Field(description="Delivery to the locker (0 when waived)")
    payable_cents: int = Field(description="total - discount + delivery fee")
    lines: list[LineOut]


class PointsEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    delta: int
    debt_delta: int
    order_id: str | None
    note: str
    at: datetime


class PointsOut(BaseModel):
    balance: int
    debt: int
    cash_cents_per_point: int
    entries: list[PointsEntryOut]


class RedeemIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"template_id": "ct-…"}]})

    template_id: Id


class UnitRefundIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"units": 1, "reason": "one box arrived crushed"}]}
    )

    units: int = Field(ge=1, le=1000)
    reason: str = Field(min_length=3, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
