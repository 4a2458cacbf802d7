"""The dashboard's questions, answered from the rollups (one merchant, a range of days).

Definitions (the same in `naive`, which answers from the raw orders):
- an order belongs to the local day it was placed on; GMV is what its orders were paid;
- average order value = GMV / paid orders; refund rate = orders with a refund / paid orders;
- group success rate = groups that succeeded / groups decided (succeeded + failed);
- funnel: campaign page views → orders placed (joins) → paid → picked up;
- buyers are counted once per day, new on the day of their first paid order with the
  merchant, repeat after; repeat rate = repeat buyer-days / buyer-days.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.models import Campaign
from tuanbox.reports.models import CampaignViews, DailyBuyers, DailyRollup


@dataclass
class Totals:
    orders: int = 0
    paid_orders: int = 0
    gmv_cents: int = 0
    picked_up: int = 0
    refunded_orders: int = 0
    refund_cents: int = 0
    groups_opened: int = 0
    groups_succeeded: int = 0
    groups_failed: int = 0
    views: int = 0

    @property
    def aov_cents(self) -> int:
        return self.gmv_cents // self.paid_orders if self.paid_orders else 0

    @property
    def refund_rate(self) -> float | None:
        return self.refunded_orders / self.paid_orders if self.paid_orders else None

    @property
    def group_success_rate(self) -> float | None:
        decided = self.groups_succeeded + self.groups_failed
        return self.groups_succeeded / decided if decided else None

    @property
    def conversion(self) -> float | None:
        """Paid orders per campaign page view."""
        return self.paid_orders / self.views if self.views else None


@dataclass
class Buyers:
    new: int = 0
    repeat: int = 0

    @property
    def repeat_rate(self) -> float | None:
        total = self.new + self.repeat
        return self.repeat / total if total else None


@dataclass
class Dashboard:
    totals: Totals
    by_day: dict[date, Totals]
    by_campaign: dict[str, Totals]  # '' = orders outside any campaign
    by_station: dict[str, Totals]  # '' = no station
    buyers: Buyers
    buyers_by_station: dict[str, Buyers]
    # Per compared campaign, its days.
    compared: dict[str, dict[date, Totals]] = field(default_factory=dict)


SUMS = tuple(f.name for f in fields(Totals) if f.name != "views")


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(DailyRollup, n)), 0) for n in SUMS]


def _totals(values: Any) -> Totals:
    return Totals(**{n: int(v) for n, v in zip(SUMS, values, strict=True)})


def _scope(stmt: Any, table: Any, merchant_id: str, first: date, last: date) -> Any:
    return stmt.where(table.merchant_id == merchant_id, table.day >= first, table.day <= last)


def totals(db: Session, merchant_id: str, first: date, last: date) -> Totals:
    row = db.execute(_scope(select(*_sums()), DailyRollup, merchant_id, first, last)).one()
    out = _totals(row)
    out.views = int(
        db.scalar(
            _scope(
                select(func.coalesce(func.sum(CampaignViews.views), 0)),
                CampaignViews,
                merchant_id,
                first,
                last,
            )
        )
        or 0
    )
    return out


def _grouped(db: Session, key: Any, merchant_id: str, first: date, last: date) -> dict[Any, Totals]:
    stmt = _scope(select(key, *_sums()), DailyRollup, merchant_id, first, last).group_by(key)
    return {row[0]: _totals(row[1:]) for row in db.execute(stmt)}


def _views_by(
    db: Session, key: Any, merchant_id: str, first: date, last: date, into: dict[Any, Totals]
) -> None:
    stmt = _scope(
        select(key, func.sum(CampaignViews.views)), CampaignViews, merchant_id, first, last
    ).group_by(key)
    for k, views in db.execute(stmt):
        into.setdefault(k, Totals()).views = int(views)


def by_day(db: Session, merchant_id: str, first: date, last: date) -> dict[date, Totals]:
    days = _grouped(db, DailyRollup.day, merchant_id, first, last)
    _views_by(db, CampaignViews.day, merchant_id, first, last, days)
    return dict(sorted(days.items()))


def by_campaign(db: Session, merchant_id: str, first: date, last: date) -> dict[str, Totals]:
    campaigns = _grouped(db, DailyRollup.campaign_id, merchant_id, first, last)
    _views_by(db, CampaignViews.campaign_id, merchant_id, first, last, campaigns)
    return campaigns


def by_station(db: Session, merchant_id: str, first: date, last: date) -> dict[str, Totals]:
    return _grouped(db, DailyRollup.station_id, merchant_id, first, last)


def campaign_days(
    db: Session, merchant_id: str, campaign_id: str, first: date, last: date
) -> dict[date, Totals]:
    stmt = (
        _scope(select(DailyRollup.day, *_sums()), DailyRollup, merchant_id, first, last)
        .where(DailyRollup.campaign_id == campaign_id)
        .group_by(DailyRollup.day)
    )
    days = {row[0]: _totals(row[1:]) for row in db.execute(stmt)}
    views = _scope(
        select(CampaignViews.day, CampaignViews.views), CampaignViews, merchant_id, first, last
    ).where(CampaignViews.campaign_id == campaign_id)
    for day, n in db.execute(views):
        days.setdefault(day, Totals()).views = int(n)
    return dict(sorted(days.items()))


def buyers_by_station(db: Session, merchant_id: str, first: date, last: date) -> dict[str, Buyers]:
    stmt = _scope(
        select(
            DailyBuyers.station_id,
            func.sum(DailyBuyers.new_buyers),
            func.sum(DailyBuyers.repeat_buyers),
        ),
        DailyBuyers,
        merchant_id,
        first,
        last,
    ).group_by(DailyBuyers.station_id)
    return {s: Buyers(int(n), int(r)) for s, n, r in db.execute(stmt)}


def dashboard(
    db: Session,
    merchant_id: str,
    first: date,
    last: date,
    compare: tuple[str, ...] = (),
) -> Dashboard:
    stations = buyers_by_station(db, merchant_id, first, last)
    return Dashboard(
        totals=totals(db, merchant_id, first, last),
        by_day=by_day(db, merchant_id, first, last),
        by_campaign=by_campaign(db, merchant_id, first, last),
        by_station=by_station(db, merchant_id, first, last),
        buyers=Buyers(
            sum(b.new for b in stations.values()), sum(b.repeat for b in stations.values())
        ),
        buyers_by_station=stations,
        compared={c: campaign_days(db, merchant_id, c, first, last) for c in compare},
    )


def campaign_titles(db: Session, merchant_id: str) -> dict[str, str]:
    """Titles of the merchant's group-buy campaigns and flash sales, by id (only theirs)."""
    titles: dict[str, str] = {}
    for table in (Campaign, FlashSale):
        stmt = select(table.id, table.title).where(table.merchant_id == merchant_id)
        titles.update({i: t for i, t in db.execute(stmt)})
    return titles
