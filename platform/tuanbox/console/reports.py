"""Console dashboard `/console/reports`: the merchant's numbers from the daily rollups.

Read from the replica when one is configured (ReadSessionDep); every query is scoped to the
signed-in staff's merchant, and a compared campaign must be one of theirs.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import select

from tuanbox.api.deps import SettingsDep
from tuanbox.api.reads import ReadSessionDep
from tuanbox.console.auth import StaffDep
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.lockers.models import Station
from tuanbox.reports import charts, queries
from tuanbox.reports.days import days_between, local_day
from tuanbox.shop.render import money

router = APIRouter(include_in_schema=False)
DATE = r"^\d{4}-\d{2}-\d{2}$"
ID = r"^[A-Za-z0-9-]{1,36}$"
MAX_DAYS = 366
PRESETS = (7, 30, 90, 365)


def _period(today: date, start: str | None, end: str | None, days: int | None) -> tuple[date, date]:
    if start is None and end is None:
        return today - timedelta(days=(days or 30) - 1), today
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise InvalidInputError("not a calendar date") from exc
    if first > last or (last - first).days >= MAX_DAYS:
        raise InvalidInputError(f"the period must run forwards and span at most {MAX_DAYS} days")
    return first, last


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


@router.get("/console/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    staff: StaffDep,
    db: ReadSessionDep,
    settings: SettingsDep,
    start: Annotated[str | None, Query(alias="from", pattern=DATE)] = None,
    end: Annotated[str | None, Query(alias="to", pattern=DATE)] = None,
    days: Annotated[int | None, Query(ge=1, le=MAX_DAYS)] = None,
    a: Annotated[str | None, Query(pattern=ID)] = None,
    b: Annotated[str | None, Query(pattern=ID)] = None,
) -> HTMLResponse:
    _ = gettext_for(locale_of(request))
    today = local_day(utcnow(), ZoneInfo(settings.station_timezone))
    first, last = _period(today, start, end, days)
    titles = queries.campaign_titles(db, staff.merchant_id)
    compare = tuple(c for c in (a, b) if c)
    for c in compare:
        if c not in titles:  # another merchant's campaign, or none
            raise NotFoundError("no such campaign")
    dash = queries.dashboard(db, staff.merchant_id, first, last, compare)
    period = days_between(first, last)
    t = dash.totals
    station_ids = set(dash.by_station) | set(dash.buyers_by_station)
    names = {
        i: n
        for i, n in db.execute(select(Station.id, Station.name).where(Station.id.in_(station_ids)))
    }

    def title_of(campaign_id: str) -> str:
        return titles.get(campaign_id) or _("Outside campaigns")

    def station_of(station_id: str) -> str:
        return names.get(station_id) or (station_id[:8] if station_id else _("No station"))

    by_day = [(d, dash.by_day.get(d, queries.Totals())) for d in period]
    gmv_chart = charts.bars(
        [(d.strftime("%m-%d"), x.gmv_cents) for d, x in by_day],
        title=_("GMV by day"),
        fmt=lambda c: money(c).split(".")[0],
        empty=_("No orders in this period"),
    )
    steps = [
        (_("Views"), t.views),
        (_("Joins"), t.orders),
        (_("Paid"), t.paid_orders),
        (_("Picked up"), t.picked_up),
    ]
    funnel_chart = charts.funnel(steps, title=_("Conversion funnel"))
    compared: list[dict[str, Any]] = []
    compare_chart = ""
    if compare:
        series = []
        for c in compare:
            cdays = dash.compared[c]
            ctot = queries.Totals()
            for x in cdays.values():
                for field in (*queries.SUMS, "views"):
                    setattr(ctot, field, getattr(ctot, field) + getattr(x, field))
            compared.append({"id": c, "title": title_of(c), "t": ctot})
            series.append((title_of(c), [cdays.get(d, queries.Totals()).gmv_cents for d in period]))
        compare_chart = charts.lines(
            [d.strftime("%m-%d") for d in period],
            series,
            title=_("GMV by day, campaign against campaign"),
            fmt=lambda c: money(c).split(".")[0],
        )
    campaigns = sorted(dash.by_campaign.items(), key=lambda kv: -kv[1].gmv_cents)
    stations = sorted(
        station_ids, key=lambda s: -(dash.by_station.get(s, queries.Totals()).gmv_cents)
    )
    context = {
        "first": first,
        "last": last,
        "span": (last - first).days + 1,
        "presets": PRESETS,
        "t": t,
        "buyers": dash.buyers,
        "pct": _pct,
        "by_day": [(d, x) for d, x in reversed(by_day) if x.orders or x.views],
        "campaigns": [(c, title_of(c), x) for c, x in campaigns],
        "choices": sorted(((c, title_of(c)) for c, _x in campaigns if c), key=lambda p: p[1]),
        "a": a or "",
        "b": b or "",
        "stations": [
            (
                station_of(s),
                dash.by_station.get(s, queries.Totals()),
                dash.buyers_by_station.get(s, queries.Buyers()),
            )
            for s in stations
        ],
        "compared": compared,
        # Our own drawing, every label escaped where it was made.
        "gmv_chart": Markup(gmv_chart),  # noqa: S704
        "funnel_chart": Markup(funnel_chart),  # noqa: S704
        "compare_chart": Markup(compare_chart),  # noqa: S704
        "steps": steps,
    }
    return page(request, staff, "reports_dashboard.html", context, active="reports")
