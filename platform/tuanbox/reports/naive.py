"""The dashboard's questions answered straight from the raw orders (PostgreSQL only).

What the dashboard would cost without rollups: the bench's same-run baseline, and the tests'
check that the rollup queries give the same answers. Page views exist only as counters, so
both read them from `report_campaign_views`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tuanbox.reports import queries
from tuanbox.reports.queries import Buyers, Dashboard, Totals

_ORDERS = """
SELECT {key} AS k, count(*), count(o.paid_at), coalesce(sum(o.paid_cents), 0),
       count(o.picked_up_at), count(*) FILTER (WHERE o.refunded_cents > 0),
       coalesce(sum(o.refunded_cents), 0)
FROM orders o
LEFT JOIN gb_groups g ON g.id = o.group_id
LEFT JOIN flash_reservations r ON r.order_id = o.id
WHERE o.merchant_id = :m
  AND o.created_at >= (CAST(:first AS date)::timestamp AT TIME ZONE :tz)
  AND o.created_at < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE :tz)
  {extra}
GROUP BY 1
"""
_GROUPS = """
SELECT {key} AS k, count(*), count(*) FILTER (WHERE g.status = 'confirmed'),
       count(*) FILTER (WHERE g.status = 'failed')
FROM gb_groups g JOIN gb_campaigns c ON c.id = g.campaign_id
WHERE c.merchant_id = :m
  AND g.created_at >= (CAST(:first AS date)::timestamp AT TIME ZONE :tz)
  AND g.created_at < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE :tz)
  {extra}
GROUP BY 1
"""
_O_DAY = "CAST(timezone(:tz, o.created_at) AS date)"
_G_DAY = "CAST(timezone(:tz, g.created_at) AS date)"
_O_CAMPAIGN = "coalesce(g.campaign_id, r.sale_id, '')"


def _grouped(
    db: Session,
    o_key: str,
    g_key: str | None,
    params: dict[str, Any],
    o_extra: str = "",
    g_extra: str = "",
) -> dict[Any, Totals]:
    out: dict[Any, Totals] = {}
    for k, n, paid, gmv, picked, refunded, refund_cents in db.execute(
        text(_ORDERS.format(key=o_key, extra=o_extra)), params
    ):
        out[k] = Totals(n, paid, gmv, picked, refunded, refund_cents)
    if g_key is not None:
        for k, opened, ok, failed in db.execute(
            text(_GROUPS.format(key=g_key, extra=g_extra)), params
        ):
            t = out.setdefault(k, Totals())
            t.groups_opened, t.groups_succeeded, t.groups_failed = opened, ok, failed
    return out


def _params(merchant_id: str, first: date, last: date, tz: str) -> dict[str, Any]:
    return {"m": merchant_id, "first": first, "last": last, "tz": tz}


def totals(db: Session, merchant_id: str, first: date, last: date, tz: str) -> Totals:
    p = _params(merchant_id, first, last, tz)
    out = _grouped(db, "1", "1", p).get(1, Totals())
    out.views = queries.totals(db, merchant_id, first, last).views
    return out


def by_day(db: Session, merchant_id: str, first: date, last: date, tz: str) -> dict[date, Totals]:
    days = _grouped(db, _O_DAY, _G_DAY, _params(merchant_id, first, last, tz))
    for day, t in queries.by_day(db, merchant_id, first, last).items():
        if t.views:
            days.setdefault(day, Totals()).views = t.views
    return dict(sorted(days.items()))


def by_campaign(
    db: Session, merchant_id: str, first: date, last: date, tz: str
) -> dict[str, Totals]:
    out = _grouped(db, _O_CAMPAIGN, "g.campaign_id", _params(merchant_id, first, last, tz))
    for c, t in queries.by_campaign(db, merchant_id, first, last).items():
        if t.views:
            out.setdefault(c, Totals()).views = t.views
    return out


def by_station(
    db: Session, merchant_id: str, first: date, last: date, tz: str
) -> dict[str, Totals]:
    return _grouped(db, "coalesce(o.station_id, '')", "''", _params(merchant_id, first, last, tz))


def campaign_days(
    db: Session, merchant_id: str, campaign_id: str, first: date, last: date, tz: str
) -> dict[date, Totals]:
    p = {**_params(merchant_id, first, last, tz), "c": campaign_id}
    days = _grouped(
        db, _O_DAY, _G_DAY, p, o_extra=f"AND {_O_CAMPAIGN} = :c", g_extra="AND g.campaign_id = :c"
    )
    for day, t in queries.campaign_days(db, merchant_id, campaign_id, first, last).items():
        if t.views:
            days.setdefault(day, Totals()).views = t.views
    return dict(sorted(days.items()))


_BUYERS = """
WITH paid AS (
  SELECT user_id, station_id, created_at, id, CAST(timezone(:tz, created_at) AS date) AS d
  FROM orders WHERE merchant_id = :m AND paid_at IS NOT NULL
), firsts AS (
  SELECT user_id, min(d) AS fd FROM paid GROUP BY user_id
), daily AS (
  SELECT DISTINCT ON (user_id, d) user_id, d, station_id FROM paid
  WHERE d BETWEEN :first AND :last ORDER BY user_id, d, created_at, id
)
SELECT coalesce(daily.station_id, ''), count(*) FILTER (WHERE daily.d = firsts.fd),
       count(*) FILTER (WHERE daily.d > firsts.fd)
FROM daily JOIN firsts USING (user_id) GROUP BY 1
"""


def buyers_by_station(
    db: Session, merchant_id: str, first: date, last: date, tz: str
) -> dict[str, Buyers]:
    rows = db.execute(text(_BUYERS), _params(merchant_id, first, last, tz))
    return {s: Buyers(n, r) for s, n, r in rows}


def dashboard(
    db: Session, merchant_id: str, first: date, last: date, tz: str, compare: tuple[str, ...] = ()
) -> Dashboard:
    stations = buyers_by_station(db, merchant_id, first, last, tz)
    return Dashboard(
        totals=totals(db, merchant_id, first, last, tz),
        by_day=by_day(db, merchant_id, first, last, tz),
        by_campaign=by_campaign(db, merchant_id, first, last, tz),
        by_station=by_station(db, merchant_id, first, last, tz),
        buyers=Buyers(
            sum(b.new for b in stations.values()), sum(b.repeat for b in stations.values())
        ),
        buyers_by_station=stations,
        compared={c: campaign_days(db, merchant_id, c, first, last, tz) for c in compare},
    )
