"""Request and response bodies of the growth API (every input bounded)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuanbox.bounds import MAX_ORDER_CENTS, Id

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class BindIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"inviter_id": "u-…", "source": "poster", "campaign_id": "c-…"}]
        }
    )

    inviter_id: Id
    source: Literal["poster", "link"] = "poster"
    campaign_id: Id | None = None


class BindOut(BaseModel):
    inviter_id: str
    created: bool
    campaign_id: str | None


class TaskProgressOut(BaseModel):
    task_id: str
    name: str
    goal: int
    count: int
    ends_at: datetime
    reward: str | None


class InvitesOut(BaseModel):
    inviter_id: str | None
    invitees: int = Field(description="shoppers bound to this inviter")
    counted: int = Field(
        description="of them, those who count: first order picked up, nothing refunded"
    )
    tasks: list[TaskProgressOut]


class StandingOut(BaseModel):
    rank: int
    name: str
    invites: int
    me: bool = False


class LeaderboardOut(BaseModel):
    period: str
    starts_at: datetime
    ends_at: datetime
    places: list[StandingOut]


class TaskIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "invite 3 new buyers",
                    "goal": 3,
                    "template_id": "t-…",
                    "starts_at": "2026-01-01T00:00:00Z",
                    "ends_at": "2036-01-01T00:00:00Z",
                }
            ]
        }
    )

    name: Name
    goal: int = Field(ge=1, le=1000)
    template_id: Id
    starts_at: datetime
    ends_at: datetime
    merchant_id: Id | None = None

    @model_validator(mode="after")
    def _aware(self) -> TaskIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a time zone")
        if self.starts_at.year < 2000 or self.ends_at.year > 2200:
            raise ValueError("the window must fall between the years 2000 and 2200")
        return self


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    goal: int
    template_id: str
    starts_at: datetime
    ends_at: datetime
    merchant_id: str | None
    active: bool


class RewardIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"template_id": "t-…", "top_n": 10}]})

    template_id: Id
    top_n: int = Field(default=10, ge=1, le=100)
    active: bool = True


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    period_kind: str
    template_id: str
    top_n: int
    active: bool


class OfferIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sku_id": "s-…", "name": "新人专享 ¥1 购", "price_cents": 100}]
        }
    )

    sku_id: Id
    name: Name
    price_cents: int = Field(ge=1, le=MAX_ORDER_CENTS)


class OfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    sku_id: str
    name: str
    price_cents: int
    active: bool


class ClaimIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"device_id": "device-1"}]})

    device_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


class ClaimOut(BaseModel):
    claim_id: str
    offer_id: str
    order_id: str
    price_cents: int
