"""Campaign specifications as commands: validated input turned into a price schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tuanbox.bounds import MAX_GROUP_SIZE, MAX_PRICE_CENTS, MAX_QTY, MAX_STOCK
from tuanbox.groupbuy.domain import CampaignKind, InvalidCampaignError, PriceSchedule, Tier


@dataclass(frozen=True)
class CampaignSpec:
    """`CreateCampaign`: what merchant staff ask for (checked by `schedule()`)."""

    sku_id: str
    title: str
    kind: CampaignKind
    tiers: tuple[Tier, ...]
    max_size: int
    starts_at: datetime
    ends_at: datetime
    group_ttl_s: int = 24 * 3600
    leader_price_cents: int | None = None
    per_user_limit: int = 1
    station_ids: tuple[str, ...] = field(default_factory=tuple)
    presale: bool = False
    lot_code: str | None = None
    # Units set aside on the SKU for this campaign when it is created (None: every join
    # reserves from the SKU itself, one at a time under the SKU's row lock).
    stock_cap: int | None = None

    def schedule(self) -> PriceSchedule:
        if self.kind is CampaignKind.FIXED and len(self.tiers) != 1:
            raise InvalidCampaignError("a fixed campaign has exactly one (members, price) tier")
        if self.ends_at <= self.starts_at:
            raise InvalidCampaignError("the campaign must end after it starts")
        if self.group_ttl_s < 60:
            raise InvalidCampaignError("a group deadline shorter than a minute is a mistake")
        if not 1 <= self.per_user_limit <= MAX_QTY:
            raise InvalidCampaignError(f"per_user_limit must be 1 to {MAX_QTY}")
        if not 1 <= self.max_size <= MAX_GROUP_SIZE:
            raise InvalidCampaignError(f"max_size must be 1 to {MAX_GROUP_SIZE}")
        if self.leader_price_cents is not None and not (
            0 <= self.leader_price_cents <= MAX_PRICE_CENTS
        ):
            raise InvalidCampaignError(f"leader price must be 0 to {MAX_PRICE_CENTS} cents")
        if self.stock_cap is not None and not 1 <= self.stock_cap <= MAX_STOCK:
            raise InvalidCampaignError(f"stock_cap must be 1 to {MAX_STOCK}")
        return PriceSchedule.build(self.tiers, max_size=self.max_size)


def tiers_from_json(raw: list[list[int]]) -> PriceSchedule:
    """The schedule as stored on the campaign row (already validated when created)."""
    return PriceSchedule(tuple(Tier(int(m), int(p)) for m, p in raw))


def tiers_to_json(schedule: PriceSchedule) -> list[list[int]]:
    return [[t.members, t.price_cents] for t in schedule.tiers]
