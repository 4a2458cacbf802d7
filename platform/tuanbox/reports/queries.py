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
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.models import Campaign
from tuanbox.reports.models import (
    CampaignViews,
    DailyBuyers,
    DailyRollup,
    DailyStationRollup,
    MonthlyStationRollup,
)
from tuanbox.reports.rollup import next_month


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


def _station_sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(DailyStationRollup, n)), 0) for n in SUMS]


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
    return stations_and_buyers(db, merchant_id, first, last, buyers=False)[0]


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
    return stations_and_buyers(db, merchant_id, first, last, stations=False)[1]


def spans(first: date, last: date) -> tuple[list[tuple[date, date]], tuple[date, date] | None]:
    """The range as daily stretches and the whole months inside it (first days of the first
    and of the month after the last), or no months when it holds no whole month."""
    start = first if first.day == 1 else next_month(first.replace(day=1))
    after = next_month(last.replace(day=1))
    stop = after if last == after - timedelta(days=1) else last.replace(day=1)
    if start >= stop:
        return [(first, last)], None
    days = []
    if first < start:
        days.append((first, start - timedelta(days=1)))
    if stop <= last:
        days.append((stop, last))
    return days, (start, stop)


def stations_and_buyers(
    db: Session,
    merchant_id: str,
    first: date,
    last: date,
    *,
    stations: bool = True,
    buyers: bool = True,
) -> tuple[dict[str, Totals], dict[str, Buyers]]:
    """By station and buyers by station in one statement: the whole months of the range from
    `report_monthly_stations`, the days around them from the daily station and buyer rows."""
    days, months = spans(first, last)
    names = ["station_id", *SUMS, "new_buyers", "repeat_buyers", "station_days", "buyer_days"]

    def row(*values: Any) -> list[Any]:  # every column labelled: equal literals stay apart
        return [
            (literal(v) if isinstance(v, int) else v).label(n)
            for n, v in zip(names, values, strict=True)
        ]

    counts = [0] * len(SUMS)
    parts: list[Any] = []
    for a, b in days:
        if stations:
            t = DailyStationRollup
            parts.append(
                select(*row(t.station_id, *[getattr(t, n) for n in SUMS], 0, 0, 1, 0)).where(
                    t.merchant_id == merchant_id, t.day >= a, t.day <= b
                )
            )
        if buyers:
            u = DailyBuyers
            parts.append(
                select(*row(u.station_id, *counts, u.new_buyers, u.repeat_buyers, 0, 1)).where(
                    u.merchant_id == merchant_id, u.day >= a, u.day <= b
                )
            )
    if months is not None:
        m = MonthlyStationRollup
        parts.append(
            select(
                *row(
                    m.station_id,
                    *[getattr(m, n) for n in SUMS],
                    m.new_buyers,
                    m.repeat_buyers,
                    m.station_days if stations else 0,
                    m.buyer_days if buyers else 0,
                )
            ).where(m.merchant_id == merchant_id, m.month >= months[0], m.month < months[1])
        )
    both = union_all(*parts).subquery()
    stmt = select(both.c.station_id, *[func.sum(both.c[n]) for n in names[1:]]).group_by(
        both.c.station_id
    )
    by_st: dict[str, Totals] = {}
    by_buyers: dict[str, Buyers] = {}
    for record in db.execute(stmt):
        values = dict(zip(names, record, strict=True))
        if values["station_days"]:
            by_st[record[0]] = _totals([values[n] for n in SUMS])
        if values["buyer_days"]:
            by_buyers[record[0]] = Buyers(int(values["new_buyers"]), int(values["repeat_buyers"]))
    return by_st, by_buyers


def dashboard(
    db: Session,
    merchant_id: str,
    first: date,
    last: date,
    compare: tuple[str, ...] = (),
) -> Dashboard:
    """Everything the page shows. On PostgreSQL, in five statements (GROUPING SETS: one scan
    of the range gives the totals and the by-day and by-campaign sums); elsewhere
    one statement per part. Both give the same answer (tested)."""
    if db.get_bind().dialect.name == "postgresql":
        return _dashboard_grouped(db, merchant_id, first, last, compare)
    return dashboard_by_parts(db, merchant_id, first, last, compare)


def dashboard_by_parts(
    db: Session, merchant_id: str, first: date, last: date, compare: tuple[str, ...] = ()
) -> Dashboard:
    """The dashboard one part (one portable statement) at a time."""
    by_st, stations = stations_and_buyers(db, merchant_id, first, last)
    return Dashboard(
        totals=totals(db, merchant_id, first, last),
        by_day=by_day(db, merchant_id, first, last),
        by_campaign=by_campaign(db, merchant_id, first, last),
        by_station=by_st,
        buyers=_buyers(stations),
        buyers_by_station=stations,
        compared={c: campaign_days(db, merchant_id, c, first, last) for c in compare},
    )


def _buyers(stations: dict[str, Buyers]) -> Buyers:
    return Buyers(sum(b.new for b in stations.values()), sum(b.repeat for b in stations.values()))


_SUM_SQL = ", ".join(f"coalesce(sum({n}), 0)" for n in SUMS)
# GROUPING(day, campaign_id): a bit set for each column a row is NOT grouped by.
_BY_DAY, _BY_CAMPAIGN, _ALL = 1, 2, 3
# The SQL below is built only from our own column names; every value is a bound parameter.
_GROUPED = text(
    "SELECT GROUPING(day, campaign_id), day, campaign_id, "  # noqa: S608
    + _SUM_SQL
    + " FROM report_daily WHERE merchant_id = :m AND day BETWEEN :first AND :last"
    " GROUP BY GROUPING SETS ((day), (campaign_id), ())"
)
_GROUPED_VIEWS = text(
    "SELECT GROUPING(day, campaign_id), day, campaign_id, coalesce(sum(views), 0)"
    " FROM report_campaign_views WHERE merchant_id = :m AND day BETWEEN :first AND :last"
    " GROUP BY GROUPING SETS ((day), (campaign_id), ())"
)
_COMPARED = text(
    "SELECT campaign_id, day, "  # noqa: S608
    + _SUM_SQL
    + " FROM report_daily WHERE merchant_id = :m"
    " AND day BETWEEN :first AND :last AND campaign_id IN :ids GROUP BY campaign_id, day"
).bindparams(bindparam("ids", expanding=True))
_COMPARED_VIEWS = text(
    "SELECT campaign_id, day, views FROM report_campaign_views WHERE merchant_id = :m"
    " AND day BETWEEN :first AND :last AND campaign_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _dashboard_grouped(
    db: Session, merchant_id: str, first: date, last: date, compare: tuple[str, ...]
) -> Dashboard:
    p: dict[str, Any] = {"m": merchant_id, "first": first, "last": last}
    total = Totals()
    days: dict[date, Totals] = {}
    campaigns: dict[str, Totals] = {}
    for g, day, campaign, *sums in db.execute(_GROUPED, p):
        t = _totals(sums)
        if g == _ALL:
            total = t
        elif g == _BY_DAY:
            days[day] = t
        elif g == _BY_CAMPAIGN:
            campaigns[campaign] = t
    for g, day, campaign, views in db.execute(_GROUPED_VIEWS, p):
        if g == 3:
            total.views = int(views)
        elif g == 1:
            days.setdefault(day, Totals()).views = int(views)
        elif g == 2 and views:
            campaigns.setdefault(campaign, Totals()).views = int(views)
    compared: dict[str, dict[date, Totals]] = {c: {} for c in compare}
    if compare:
        q = {**p, "ids": list(compare)}
        for campaign, day, *sums in db.execute(_COMPARED, q):
            compared[campaign][day] = _totals(sums)
        for campaign, day, views in db.execute(_COMPARED_VIEWS, q):
            compared[campaign].setdefault(day, Totals()).views = int(views)
    by_st, buyers = stations_and_buyers(db, merchant_id, first, last)
    return Dashboard(
        totals=total,
        by_day=dict(sorted(days.items())),
        by_campaign=campaigns,
        by_station=by_st,
        buyers=_buyers(buyers),
        buyers_by_station=buyers,
        compared={c: dict(sorted(d.items())) for c, d in compared.items()},
    )


def campaign_titles(db: Session, merchant_id: str) -> dict[str, str]:
    """Titles of the merchant's group-buy campaigns and flash sales, by id (only theirs)."""
    titles: dict[str, str] = {}
    for table in (Campaign, FlashSale):
        stmt = select(table.id, table.title).where(table.merchant_id == merchant_id)
        titles.update({i: t for i, t in db.execute(stmt)})
    return titles
