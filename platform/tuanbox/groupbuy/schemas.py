"""API shapes of campaigns and groups (kept apart from the tables)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuanbox.bounds import MAX_STATIONS_PER_CAMPAIGN, MAX_STOCK, GroupSize, Id, PriceCents, Qty
from tuanbox.groupbuy.domain import CampaignKind


class TierIn(BaseModel):
    members: GroupSize = Field(description="Paid members needed for this price")
    price_cents: PriceCents = Field(description="Unit price in cents from this size on")


class TierOut(BaseModel):
    """A tier as stored: not re-validated, so a row older than today's bounds still reads."""

    members: int
    price_cents: int


class CampaignIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku_id": "3f1c…",
                    "title": "Yunnan blueberries, tiered",
                    "kind": "tiered",
                    "tiers": [
                        {"members": 3, "price_cents": 2700},
                        {"members": 5, "price_cents": 2400},
                        {"members": 10, "price_cents": 2100},
                    ],
                    "max_size": 10,
                    "starts_at": "2026-12-01T00:00:00Z",
                    "ends_at": "2026-12-08T00:00:00Z",
                    "group_ttl_s": 86400,
                    "per_user_limit": 2,
                    "station_ids": ["st-001"],
                    "stock_cap": 500,
                }
            ]
        }
    )

    sku_id: Id
    title: str = Field(min_length=1, max_length=200)
    kind: CampaignKind
    tiers: list[TierIn] = Field(min_length=1, max_length=10)
    max_size: GroupSize
    starts_at: datetime
    ends_at: datetime
    group_ttl_s: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    leader_price_cents: PriceCents | None = None
    per_user_limit: Qty = 1
    # Each must be a station in the stations table (checked when the campaign is created).
    station_ids: list[Id] = Field(default_factory=list, max_length=MAX_STATIONS_PER_CAMPAIGN)
    presale: bool = False
    lot_code: str | None = Field(default=None, max_length=20)
    stock_cap: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STOCK,
        description="Units set aside on the SKU now for this campaign's groups (recommended: "
        "joins then never wait on the SKU); without it each join reserves from the SKU.",
    )

    @model_validator(mode="after")
    def _aware(self) -> CampaignIn:
        for name in ("starts_at", "ends_at"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} needs a timezone (e.g. a trailing Z)")
        return self


class CampaignOut(BaseModel):
    id: str
    merchant_id: str
    sku_id: str
    title: str
    kind: str
    tiers: list[TierOut]
    min_size: int
    max_size: int
    leader_price_cents: int | None
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    group_ttl_s: int
    station_ids: list[str]
    presale: bool
    lot_code: str | None
    stock_cap: int | None = None
    stock_remaining: int | None = Field(
        default=None, description="Units of the cap not yet drawn by a group"
    )


class JoinIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"qty": 1, "station_id": "st-001"}, {"qty": 2}]}
    )

    qty: Qty = 1
    station_id: Id | None = None


class ProgressOut(BaseModel):
    members: int
    paid: int
    needed: int
    seats_left: int
    current_price_cents: int | None
    next_tier_members: int | None
    next_tier_price_cents: int | None
    members_to_next_tier: int | None
    seconds_left: int
    percent: int


class MemberOut(BaseModel):
    user_id: str
    joined_seq: int
    paid: bool
    is_leader: bool


class GroupOut(BaseModel):
    id: str
    campaign_id: str
    status: str
    leader_user_id: str | None
    deadline_at: datetime
    final_unit_price_cents: int | None
    progress: ProgressOut
    members: list[MemberOut]
    share_url: str


class JoinedOut(BaseModel):
    group: GroupOut
    order_id: str
    unit_price_cents: int = Field(description="Per unit: the tier's, a member's if lower")
    delivery_fee_cents: int = Field(default=0, description="Paid on top (0: member or waived)")
