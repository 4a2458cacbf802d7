"""Daily rollups: recompute a (merchant, local day) from raw rows; refresh what changed.

A rollup row is derived only from the orders and groups *created* on its merchant's local
day: an order's later payment, pickup or refund changes the day it was placed on (a late
refund updates its own day, not today). So the unit of work is "recompute this merchant's
day", a delete and insert inside the caller's transaction, and the refresh is:

1. read the orders and groups whose `updated_at` is past the watermark (minus an overlap,
   for transactions that committed after a later one: re-reading is harmless);
2. bring the first-purchase days of their buyers up to date (a buyer's first day moving
   changes the new/repeat split of the old first day as well);
3. recompute every touched (merchant, day) and move the watermark, all in one transaction:
   a crash anywhere leaves the previous state and the next run redoes the work, and running
   twice gives the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from tuanbox.flashsale.models import Reservation
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.orders.models import Order
from tuanbox.reports.days import day_bounds, local_day
from tuanbox.reports.models import (
    NONE,
    BuyerFirstDay,
    DailyBuyers,
    DailyRollup,
    DailyStationRollup,
    MonthlyStationRollup,
    Watermark,
)

WATERMARK = "rollups"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# IN lists are cut to this size (PostgreSQL takes more; SQLite's default limit is 32766).
CHUNK = 500

Dirty = dict[date, set[str]]


@dataclass(frozen=True)
class RefreshResult:
    orders_read: int
    groups_read: int
    days_recomputed: int  # (merchant, day) pairs
    watermark: datetime


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(values)
    for n in range(0, len(items), CHUNK):
        yield items[n : n + CHUNK]


def _campaign_of() -> Any:
    return func.coalesce(Group.campaign_id, Reservation.sale_id, literal(NONE))


def order_rows(
    session: Session, day: date, merchant_ids: Collection[str] | None, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Counts per (merchant, campaign, station) of the orders and groups created on `day`
    (all merchants: None); `store_day` folds them into the campaign and station tables."""
    start, end = day_bounds(day, tz)
    campaign = _campaign_of().label("campaign_id")
    station = func.coalesce(Order.station_id, literal(NONE)).label("station_id")
    stmt = (
        select(
            Order.merchant_id,
            campaign,
            station,
            func.count(),
            func.count(Order.paid_at),
            func.coalesce(func.sum(Order.paid_cents), 0),
            func.count(Order.picked_up_at),
            func.coalesce(func.sum(case((Order.refunded_cents > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(Order.refunded_cents), 0),
        )
        .select_from(Order)
        .outerjoin(Group, Group.id == Order.group_id)
        .outerjoin(Reservation, Reservation.order_id == Order.id)
        .where(Order.created_at >= start, Order.created_at < end)
        .group_by(Order.merchant_id, campaign, station)
    )
    gstmt = (
        select(
            Campaign.merchant_id,
            Group.campaign_id,
            func.count(),
            func.coalesce(func.sum(case((Group.status == "confirmed", 1), else_=0)), 0),
            func.coalesce(func.sum(case((Group.status == "failed", 1), else_=0)), 0),
        )
        .join(Campaign, Campaign.id == Group.campaign_id)
        .where(Group.created_at >= start, Group.created_at < end)
        .group_by(Campaign.merchant_id, Group.campaign_id)
    )
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def row(merchant_id: str, campaign_id: str, station_id: str) -> dict[str, Any]:
        key = (merchant_id, campaign_id, station_id)
        if key not in rows:
            rows[key] = {
                "merchant_id": merchant_id,
                "day": day,
                "campaign_id": campaign_id,
                "station_id": station_id,
                **dict.fromkeys(COUNTS, 0),
            }
        return rows[key]

    for chunk in _merchant_chunks(merchant_ids):
        o_stmt = stmt if chunk is None else stmt.where(Order.merchant_id.in_(chunk))
        for m, c, s, n, paid, gmv, picked, refunded, refund_cents in session.execute(o_stmt):
            r = row(m, c, s)
            r.update(orders=n, paid_orders=paid, gmv_cents=gmv, picked_up=picked)
            r.update(refunded_orders=refunded, refund_cents=refund_cents)
        g_stmt = gstmt if chunk is None else gstmt.where(Campaign.merchant_id.in_(chunk))
        for m, c, opened, succeeded, failed in session.execute(g_stmt):
            r = row(m, c, NONE)
            r.update(groups_opened=opened, groups_succeeded=succeeded, groups_failed=failed)
    return list(rows.values())


COUNTS = (
    "orders",
    "paid_orders",
    "gmv_cents",
    "picked_up",
    "refunded_orders",
    "refund_cents",
    "groups_opened",
    "groups_succeeded",
    "groups_failed",
)


def _merchant_chunks(merchant_ids: Collection[str] | None) -> Iterable[list[str] | None]:
    if merchant_ids is None:
        yield None
    else:
        yield from _chunks(merchant_ids)


def buyer_rows(
    session: Session, day: date, merchant_ids: Collection[str] | None, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """report_daily_buyers rows for `day`; reads report_buyer_first, which must be current."""
    start, end = day_bounds(day, tz)
    stmt = (
        select(
            Order.merchant_id,
            Order.user_id,
            func.coalesce(Order.station_id, literal(NONE)),
            Order.created_at,
            Order.id,
            BuyerFirstDay.first_day,
        )
        .outerjoin(
            BuyerFirstDay,
            and_(
                BuyerFirstDay.merchant_id == Order.merchant_id,
                BuyerFirstDay.user_id == Order.user_id,
            ),
        )
        .where(Order.created_at >= start, Order.created_at < end, Order.paid_at.is_not(None))
    )
    first_order: dict[tuple[str, str], tuple[datetime, str, str, date | None]] = {}
    for chunk in _merchant_chunks(merchant_ids):
        c_stmt = stmt if chunk is None else stmt.where(Order.merchant_id.in_(chunk))
        for m, u, station, created, order_id, first in session.execute(c_stmt):
            seen = first_order.get((m, u))
            if seen is None or (created, order_id) < seen[:2]:
                first_order[(m, u)] = (created, order_id, station, first)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (m, _u), (_c, _o, station, first_day) in first_order.items():
        # No first day yet (the refresh has not seen the payment): counted as new, as it is.
        counts[(m, station)][0 if first_day is None or first_day >= day else 1] += 1
    return [
        {"merchant_id": m, "day": day, "station_id": s, "new_buyers": n, "repeat_buyers": r}
        for (m, s), (n, r) in counts.items()
    ]


def store_day(
    session: Session, day: date, merchant_ids: Collection[str] | None, tz: ZoneInfo
) -> None:
    """Replace the rollup rows of these merchants' `day` with a fresh recomputation."""
    tables: tuple[Any, ...] = (DailyRollup, DailyStationRollup, DailyBuyers)
    for table in tables:
        for chunk in _merchant_chunks(merchant_ids):
            stmt = delete(table).where(table.day == day)
            if chunk is not None:
                stmt = stmt.where(table.merchant_id.in_(chunk))
            session.execute(stmt)
    rows = order_rows(session, day, merchant_ids, tz)
    for table, key, drop in (
        (DailyRollup, "campaign_id", "station_id"),
        (DailyStationRollup, "station_id", "campaign_id"),
    ):
        folded = _fold(rows, key, drop)
        if folded:
            session.execute(insert(table), folded)
    buyers = buyer_rows(session, day, merchant_ids, tz)
    if buyers:
        session.execute(insert(DailyBuyers), buyers)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def store_months(session: Session, months: Mapping[date, Collection[str] | None]) -> None:
    """Re-derive `report_monthly_stations` for these (month, merchants) from the daily
    station and buyer rows (call after their days were stored)."""
    for month, merchants in sorted(months.items()):
        end = next_month(month) - timedelta(days=1)
        for chunk in _merchant_chunks(merchants):
            stmt = delete(MonthlyStationRollup).where(MonthlyStationRollup.month == month)
            if chunk is not None:
                stmt = stmt.where(MonthlyStationRollup.merchant_id.in_(chunk))
            session.execute(stmt)
            st = select(
                DailyStationRollup.merchant_id,
                DailyStationRollup.station_id,
                *[getattr(DailyStationRollup, n) for n in COUNTS],
                literal(0).label("new_buyers"),
                literal(0).label("repeat_buyers"),
                literal(1).label("station_days"),
                literal(0).label("buyer_days"),
            ).where(DailyStationRollup.day >= month, DailyStationRollup.day <= end)
            by = select(
                DailyBuyers.merchant_id,
                DailyBuyers.station_id,
                *[literal(0).label(n) for n in COUNTS],
                DailyBuyers.new_buyers,
                DailyBuyers.repeat_buyers,
                literal(0).label("station_days"),
                literal(1).label("buyer_days"),
            ).where(DailyBuyers.day >= month, DailyBuyers.day <= end)
            if chunk is not None:
                st = st.where(DailyStationRollup.merchant_id.in_(chunk))
                by = by.where(DailyBuyers.merchant_id.in_(chunk))
            both = st.union_all(by).subquery()
            sums = [n for n in (*COUNTS, "new_buyers", "repeat_buyers")]
            rows = select(
                both.c.merchant_id,
                literal(month).label("month"),
                both.c.station_id,
                *[func.sum(both.c[n]).label(n) for n in sums],
                func.sum(both.c.station_days).label("station_days"),
                func.sum(both.c.buyer_days).label("buyer_days"),
            ).group_by(both.c.merchant_id, both.c.station_id)
            cols = ["merchant_id", "month", "station_id", *sums, "station_days", "buyer_days"]
            session.execute(insert(MonthlyStationRollup).from_select(cols, rows))


def _months(dirty: Dirty) -> Dirty:
    out: Dirty = {}
    for day, merchants in dirty.items():
        out.setdefault(month_of(day), set()).update(merchants)
    return out


def _fold(rows: list[dict[str, Any]], key: str, drop: str) -> list[dict[str, Any]]:
    """Sum the (campaign, station) rows over `drop`, keeping `key`."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        k = (r["merchant_id"], r[key])
        if k not in out:
            out[k] = {n: v for n, v in r.items() if n != drop}
        else:
            for n in COUNTS:
                out[k][n] += r[n]
    return list(out.values())


def _first_days(
    session: Session, merchant_id: str, user_ids: Collection[str], tz: ZoneInfo
) -> dict[str, date]:
    stmt = (
        select(Order.user_id, func.min(Order.created_at))
        .where(
            Order.merchant_id == merchant_id,
            Order.user_id.in_(user_ids),
            Order.paid_at.is_not(None),
        )
        .group_by(Order.user_id)
    )
    return {u: local_day(first, tz) for u, first in session.execute(stmt)}


def update_first_days(
    session: Session, pairs: Collection[tuple[str, str]], tz: ZoneInfo, dirty: Dirty
) -> None:
    """Recompute the first-purchase day of these (merchant, user) pairs from the orders; a
    day that moved marks its old and new day dirty."""
    by_merchant: dict[str, set[str]] = defaultdict(set)
    for m, u in pairs:
        by_merchant[m].add(u)
    for m, users in by_merchant.items():
        for chunk in _chunks(users):
            fresh = _first_days(session, m, chunk, tz)
            stored = {
                u: d
                for u, d in session.execute(
                    select(BuyerFirstDay.user_id, BuyerFirstDay.first_day).where(
                        BuyerFirstDay.merchant_id == m, BuyerFirstDay.user_id.in_(chunk)
                    )
                )
            }
            for u in chunk:
                old, new = stored.get(u), fresh.get(u)
                if old == new:
                    continue
                for d in (old, new):
                    if d is not None:
                        dirty.setdefault(d, set()).add(m)
                if old is not None:
                    session.execute(
                        delete(BuyerFirstDay).where(
                            BuyerFirstDay.merchant_id == m, BuyerFirstDay.user_id == u
                        )
                    )
                if new is not None:
                    session.add(BuyerFirstDay(merchant_id=m, user_id=u, first_day=new))
    session.flush()


def _watermark(session: Session) -> Watermark:
    """The watermark row, locked: two refreshes never interleave (PostgreSQL)."""
    mark = session.scalars(
        select(Watermark).where(Watermark.name == WATERMARK).with_for_update()
    ).one_or_none()
    if mark is None:
        mark = Watermark(name=WATERMARK, at=EPOCH)
        session.add(mark)
        session.flush()
    return mark


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def refresh(session: Session, tz: ZoneInfo, *, overlap_s: float) -> RefreshResult:
    """Recompute every (merchant, day) with an order or group changed since the watermark,
    in the caller's transaction (commit it to make the result and the new mark visible)."""
    mark = _watermark(session)
    since = _aware(mark.at) - timedelta(seconds=overlap_s)
    dirty: Dirty = {}
    newest = _aware(mark.at)
    pairs: set[tuple[str, str]] = set()
    orders = session.execute(
        select(
            Order.merchant_id, Order.user_id, Order.created_at, Order.paid_at, Order.updated_at
        ).where(Order.updated_at > since)
    ).all()
    for m, u, created, paid_at, updated in orders:
        dirty.setdefault(local_day(created, tz), set()).add(m)
        if paid_at is not None:
            pairs.add((m, u))
        newest = max(newest, _aware(updated))
    groups = session.execute(
        select(Campaign.merchant_id, Group.created_at, Group.updated_at)
        .join(Campaign, Campaign.id == Group.campaign_id)
        .where(Group.updated_at > since)
    ).all()
    for m, created, updated in groups:
        dirty.setdefault(local_day(created, tz), set()).add(m)
        newest = max(newest, _aware(updated))
    update_first_days(session, pairs, tz, dirty)
    for day in sorted(dirty):
        store_day(session, day, dirty[day], tz)
    store_months(session, _months(dirty))
    mark.at = newest
    session.flush()
    return RefreshResult(
        orders_read=len(orders),
        groups_read=len(groups),
        days_recomputed=sum(len(m) for m in dirty.values()),
        watermark=newest,
    )


def rebuild(session: Session, tz: ZoneInfo, first: date, last: date) -> int:
    """Recompute every merchant's days from `first` to `last` and all first-purchase days,
    then set the watermark to the newest change read; returns the number of days."""
    mark = _watermark(session)
    newest = session.scalar(select(func.max(Order.updated_at)))
    newest_group = session.scalar(select(func.max(Group.updated_at)))
    session.execute(delete(BuyerFirstDay))
    firsts = session.execute(
        select(Order.merchant_id, Order.user_id, func.min(Order.created_at))
        .where(Order.paid_at.is_not(None))
        .group_by(Order.merchant_id, Order.user_id)
    )
    batch: list[dict[str, Any]] = []
    for m, u, at in firsts:
        batch.append({"merchant_id": m, "user_id": u, "first_day": local_day(at, tz)})
        if len(batch) >= 10_000:
            session.execute(insert(BuyerFirstDay), batch)
            batch = []
    if batch:
        session.execute(insert(BuyerFirstDay), batch)
    # By merchant, so each day is read through the (merchant_id, created_at) index rather
    # than by scanning every order once per day.
    merchants = set(session.scalars(select(Order.merchant_id).distinct()))
    merchants |= set(session.scalars(select(Campaign.merchant_id).distinct()))
    tables: tuple[Any, ...] = (DailyRollup, DailyStationRollup, DailyBuyers)
    for table in tables:
        session.execute(delete(table).where(table.day >= first, table.day <= last))
    day, count = first, 0
    while day <= last:
        store_day(session, day, merchants, tz)
        day += timedelta(days=1)
        count += 1
    month = month_of(first)
    while month <= last:
        store_months(session, {month: None})  # every merchant, like the days above
        month = next_month(month)
    candidates = [_aware(x) for x in (newest, newest_group) if x is not None]
    mark.at = max([_aware(mark.at), *candidates])
    session.flush()
    return count
