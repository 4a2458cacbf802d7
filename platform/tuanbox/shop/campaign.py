"""The campaign page `/c/{id}` and the flash-sale page `/f/{id}`, both from the page cache."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from tuanbox.experiments.exposure import record_exposure
from tuanbox.experiments.variant import apply as apply_variant
from tuanbox.experiments.variant import variant_for as experiment_variant
from tuanbox.membership.pricing import DeliveryTerms
from tuanbox.recommend.reads import bought_with
from tuanbox.reports.pageviews import record_view
from tuanbox.shop import listing, session
from tuanbox.shop.home import refresh_first, station_of
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.pagecache import Built, OpenerDep, cached_page, settings_of

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]
# Refusal codes a form post may come back with (?e=CODE); anything else shows nothing.
NOTICE_CODES = re.compile(r"[A-Z_]{1,40}")


def _notice(request: Request, locale: str, code: str | None) -> str | None:
    """The shopper's words for a refused form post, by the refusal's stable code."""
    if not code or not NOTICE_CODES.fullmatch(code):
        return None
    _ = gettext_for(locale)
    texts = {
        "GROUP_FULL": _("That group has just filled up. Join another or open your own."),
        "ALREADY_MEMBER": _("You are already in this group."),
        "GROUP_CLOSED": _("That group has closed."),
        "CAMPAIGN_NOT_ACTIVE": _("This offer is not open right now."),
        "USER_LIMIT_EXCEEDED": _("You have reached the limit for this offer."),
        "RATE_LIMITED": _("Too many attempts. Please wait a minute."),
        "RISK_BLOCKED": _("We could not take this order. Please contact support."),
        "UNKNOWN_STATION": _("Please choose a station."),
        "SOLD_OUT": _("Sold out."),
        "SALE_NOT_ACTIVE": _("This sale is not on right now."),
        "SALE_STARTED": _("This sale has already started."),
        "NOT_FOUND": _("That group or station does not exist (any more)."),
    }
    return texts.get(code, _("Something went wrong. Please try again."))


@router.get("/c/{campaign_id}", response_model=None)
async def campaign_page(
    campaign_id: Id,
    request: Request,
    opener: OpenerDep,
    e: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse | RedirectResponse:
    settings = settings_of(request)
    here = f"/c/{campaign_id}"
    back = refresh_first(request, settings, here)
    if back is not None:
        return back
    station_id = station_of(request)
    # A running A/B experiment shows the shopper their arm's title or image (cached per arm).
    variant = await experiment_variant(request, settings, opener, campaign_id)

    def build(db: Session, now: datetime, locale: str) -> Built:
        view = listing.campaign(db, campaign_id, now)
        if view is None:
            title = gettext_for(locale)("Not found")
            return "missing_main.html", {"title": title}, None, 404
        view = apply_variant(view, variant)
        offered = [
            s for s in listing.stations(db) if not view.station_ids or s.id in view.station_ids
        ]
        context: dict[str, Any] = {
            "title": view.title,
            "k": view,
            "stations": offered,
            "station_id": station_id,
            "open_now": view.starts_at <= now < view.ends_at,
            "reviews": listing.reviews(db, view.product_id),
            "tz": settings.station_timezone,
            # Per campaign and station, nothing personal: it belongs in the cached fragment.
            "together": bought_with(db, settings, view.product_id, station_id, now),
            "delivery": DeliveryTerms.of(settings),
        }
        until = listing.next_change(now, [view, *context["together"]], [])
        return "campaign_main.html", context, until, 200

    shell = {
        "shopper": session.signed_in(request, settings),
        "page_name": "campaign",
        "notice": _notice(request, _locale(request), e),
    }
    key = f"campaign:{campaign_id}:{station_id or '-'}"
    if variant is not None:
        key += f":x:{variant.cache_tag}"
    response = await cached_page(request, opener, key, build, shell)
    if response.status_code == 200 and e is None:  # not a refused form coming back
        await record_view(request, campaign_id)  # one HINCRBY: the funnel's first step
        if variant is not None:  # one more HINCRBY, flushed by experiments.flush_exposures
            await record_exposure(request, variant.experiment_id, variant.arm)
    return response


def _locale(request: Request) -> str:
    from tuanbox.shop.i18n import locale_of

    return locale_of(request)


@router.get("/f/{sale_id}", response_model=None)
async def flash_sale_page(
    sale_id: Id,
    request: Request,
    opener: OpenerDep,
    e: Annotated[str | None, Query(max_length=40)] = None,
    r: Annotated[str | None, Query(max_length=3)] = None,
) -> HTMLResponse | RedirectResponse:
    settings = settings_of(request)
    back = refresh_first(request, settings, f"/f/{sale_id}")
    if back is not None:
        return back

    def build(db: Session, now: datetime, locale: str) -> Built:
        view = listing.flash_sale(db, sale_id, now)
        if view is None:
            return "missing_main.html", {"title": gettext_for(locale)("Not found")}, None, 404
        context: dict[str, Any] = {
            "title": view.title,
            "s": view,
            "tz": settings.station_timezone,
            "delivery": DeliveryTerms.of(settings),
        }
        return "flash_main.html", context, listing.next_change(now, [], [view]), 200

    shell = {
        "shopper": session.signed_in(request, settings),
        "page_name": "flash",
        "notice": _notice(request, _locale(request), e),
    }
    if e is None and r in ("on", "off"):
        # The "remind me" form's answer: this response's own, never in the cached fragment.
        _ = gettext_for(_locale(request))
        minutes = settings.flash_reminder_before_min
        shell["notice_kind"] = "ok"
        shell["notice"] = (
            _("You will be reminded %(n)s minutes before it starts.") % {"n": minutes}
            if r == "on"
            else _("Reminder cancelled.")
        )
        shell["remind_cancel"] = sale_id if r == "on" else None
    response = await cached_page(request, opener, f"flash:{sale_id}", build, shell)
    if response.status_code == 200 and e is None and r is None:
        await record_view(request, sale_id)
    return response
