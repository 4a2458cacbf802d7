"""The home page `/` (cached), the pickup-station choice, and the live flash-sale stock."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.reads import ReadSessionDep
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale
from tuanbox.ratelimit.deps import get_redis
from tuanbox.settings import Settings
from tuanbox.shop import listing, session
from tuanbox.shop.cache import PageCache
from tuanbox.shop.i18n import gettext_for, locale_of
from tuanbox.shop.pagecache import Built, OpenerDep, SessionOpener, cached_page, settings_of
from tuanbox.shop.render import page, render

router = APIRouter(include_in_schema=False)
STATION_COOKIE = "tuanbox_station"
STATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,36}")
YEAR_S = 365 * 86400
MAX_LIVE_SALES = 40


def station_of(request: Request) -> str | None:
    """The shopper's chosen station (a cookie: chosen once, changeable, no account needed)."""
    value = request.cookies.get(STATION_COOKIE, "")
    return value if STATION_ID.fullmatch(value) else None


def refresh_first(request: Request, settings: Settings, here: str) -> RedirectResponse | None:
    """Send a browser whose access cookie ran out through the refresh path once."""
    if session.signed_in(request, settings) or not session.can_refresh(request):
        return None
    return RedirectResponse(f"{session.REFRESH_PATH}?next={here}", status_code=303)


@router.get("/", response_model=None)
async def home(request: Request, opener: OpenerDep) -> HTMLResponse | RedirectResponse:
    settings = settings_of(request)
    back = refresh_first(request, settings, "/")
    if back is not None:
        return back
    station_id = station_of(request)

    def build(db: Session, now: datetime, locale: str) -> Built:
        chosen = listing.station(db, station_id)
        campaigns = listing.live_campaigns(db, now, chosen.id if chosen else None)
        sales = listing.flash_sales(db, now)
        context: dict[str, Any] = {
            "title": gettext_for(locale)("Today's picks"),
            "station": chosen,
            "campaigns": campaigns,
            "sales": sales,
            "tz": settings.station_timezone,
        }
        return "home_main.html", context, listing.next_change(now, campaigns, sales), 200

    shell: dict[str, Any] = {"shopper": session.signed_in(request, settings), "page_name": "home"}
    shopper = session.shopper_from(request, settings) if shell["shopper"] else None
    if shopper is not None:  # the shopper's own block: rendered per request, never cached
        cache = PageCache(get_redis(request), settings.shop_cache_ttl_s,
                          settings.shop_cache_prefix)  # fmt: skip
        shell["extra_html"] = await run_in_threadpool(
            guess_you_like, opener, cache, settings, shopper.id, station_id, locale_of(request)
        )
    return await cached_page(request, opener, f"home:{station_id or '-'}", build, shell)


def guess_you_like(
    opener: SessionOpener,
    cache: PageCache,
    settings: Settings,
    user_id: str,
    station_id: str | None,
    locale: str,
) -> Markup:
    """ "Guess you like" for this shopper (a read session: a few seconds stale is fine), kept
    in the page cache under the shopper's own key: the same version, so any change to the
    campaigns drops it; it also ends with the first campaign it shows."""
    from tuanbox.recommend.reads import for_shopper

    name = f"foryou:{user_id}:{station_id or '-'}:{locale}"
    version, html = cache.get(name) if settings.shop_cache_ttl_s > 0 else ("", None)
    if html is None:
        now = utcnow()
        with opener() as db:
            recs = for_shopper(db, settings, user_id, station_id, now)
        _ = gettext_for(locale)
        context = {"recs": recs, "rec_heading": _("Guess you like"),
                   "rec_id": "for-you", "tz": settings.station_timezone}  # fmt: skip
        html = render(locale, "recommend_block.html", context)
        cache.put(name, version, html, now=now, until=listing.next_change(now, recs, []))
    # Our own rendering (autoescaped when made), read back from our own Redis.
    return Markup(html)  # noqa: S704


@router.get("/station", response_class=HTMLResponse)
def station_page(
    request: Request,
    settings: SettingsDep,
    db: ReadSessionDep,  # the station list is catalog: the replica may serve it
    next_: Annotated[str | None, Query(alias="next", max_length=session.MAX_NEXT)] = None,
) -> HTMLResponse:
    context = {
        "stations": listing.stations(db),
        "current": station_of(request),
        "next": session.safe_next(next_),
        "shopper": session.signed_in(request, settings),
    }
    return page(request, "station.html", context)


@router.post("/station")
def choose_station(
    request: Request,
    db: SessionDep,
    station_id: Annotated[str, Form(max_length=36)],
    next_: Annotated[str, Form(alias="next", max_length=session.MAX_NEXT)] = "/",
) -> RedirectResponse:
    session.check_same_origin(request)
    if not STATION_ID.fullmatch(station_id) or listing.station(db, station_id) is None:
        raise InvalidInputError("no such station")
    response = RedirectResponse(session.safe_next(next_), status_code=303)
    response.set_cookie(STATION_COOKIE, station_id, max_age=YEAR_S, path="/", samesite="lax",
                        httponly=True)  # fmt: skip
    return response


@router.get("/shop/live.json")
def live_stock(
    request: Request,
    db: SessionDep,
    sales: Annotated[str, Query(max_length=MAX_LIVE_SALES * 37)] = "",
) -> JSONResponse:
    """Remaining stock of these flash sales: Redis's admission counter while a sale runs
    (what admission decides on), else the database's record."""
    ids = [i for i in sales.split(",") if STATION_ID.fullmatch(i)][:MAX_LIVE_SALES]
    left: dict[str, int] = {}
    if ids:
        counters = FlashCounters(get_redis(request))
        stock_keys = [counters.keys(i)[0] for i in ids]
        try:
            values = get_redis(request).mget(stock_keys)
        except redis.RedisError:  # the record answers instead
            values = [None] * len(ids)
        missing = [i for i, v in zip(ids, values, strict=True) if v is None]
        left = {i: max(0, int(v)) for i, v in zip(ids, values, strict=True) if v is not None}
        if missing:
            rows = db.execute(
                select(FlashSale.id, FlashSale.remaining).where(FlashSale.id.in_(missing))
            )
            left.update({sid: int(rem) for sid, rem in rows})
    return JSONResponse({"sales": left}, headers={"Cache-Control": "no-store"})
