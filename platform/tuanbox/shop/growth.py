"""The shopper's membership page (`/me/membership`: status, perks, buy or renew through the
payment port) and invites page (`/me/invites`: my inviter, my invitees, task progress and
this week's leaderboard). The growth and membership packages decide; these pages show."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.coupons.domain import aware
from tuanbox.db.base import utcnow
from tuanbox.errors import TuanboxError
from tuanbox.growth import binding, invite_tasks, qualify
from tuanbox.growth.models import ReferralBinding
from tuanbox.growth.views import board
from tuanbox.membership import services as membership
from tuanbox.payments.provider import get_provider
from tuanbox.shop import i18n
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.orders import _posting_shopper, allow_pay_redirect, shopper_or_redirect
from tuanbox.shop.render import page

router = APIRouter(include_in_schema=False)


@router.get("/me/membership", response_model=None)
def membership_page(
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    ok: Annotated[str | None, Query(max_length=20)] = None,
    e: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse | RedirectResponse:
    """Am I a member, until when, what it gives, and a button to buy or renew."""
    shopper = shopper_or_redirect(request, settings, "/me/membership")
    if isinstance(shopper, RedirectResponse):
        return shopper
    _ = gettext_for(i18n.locale_of(request))
    row = membership.status(db, shopper.id)
    message, kind = None, "info"
    if ok == "paid":
        message, kind = _("Thank you! Your membership is being confirmed."), "ok"
    elif e:
        message, kind = _("Something went wrong. Please try again."), "error"
    allow_pay_redirect(request, settings)
    context: dict[str, Any] = {
        "shopper": True,
        "member": row is not None,
        # A year ahead: the date with its year, in the stations' time zone.
        "ends_on": (
            aware(row.ends_at).astimezone(ZoneInfo(settings.station_timezone)).strftime("%Y-%m-%d")
            if row
            else None
        ),
        "price_cents": settings.membership_price_cents,
        "days": settings.membership_days,
        "early_min": settings.membership_early_access_s // 60,
        "message": message,
        "message_kind": kind,
        "tz": settings.station_timezone,
    }
    return page(request, "membership.html", context)


@router.post("/me/membership/buy")
def buy_membership(request: Request, settings: SettingsDep, db: SessionDep) -> RedirectResponse:
    """Buy or renew: on to the provider's hosted page, back here once paid."""
    shopper = _posting_shopper(request, settings, "")
    try:
        provider = get_provider(settings.default_payment_provider, settings)
        _term, url = membership.start_purchase(db, settings, shopper.id, provider)
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return RedirectResponse(f"/me/membership?e={exc.code}", status_code=303)
    if provider.name == "sim":
        url = f"{url}?return=%2Fme%2Fmembership"
    return RedirectResponse(url, status_code=303)


@router.get("/me/invites", response_model=None)
def invites_page(
    request: Request, settings: SettingsDep, db: SessionDep
) -> HTMLResponse | RedirectResponse:
    """My invites: who brought me, how many I brought, tasks and this week's leaderboard."""
    shopper = shopper_or_redirect(request, settings, "/me/invites")
    if isinstance(shopper, RedirectResponse):
        return shopper
    invitees = db.scalar(
        select(func.count())
        .select_from(ReferralBinding)
        .where(ReferralBinding.inviter_id == shopper.id)
    )
    context: dict[str, Any] = {
        "shopper": True,
        "invited_by": binding.inviter_of(db, shopper.id) is not None,
        "invitees": int(invitees or 0),
        "counted": qualify.count_for(db, shopper.id),
        "tasks": invite_tasks.progress(db, shopper.id, now=utcnow()),
        "board": board(db, settings, "week", shopper.id),
        "tz": settings.station_timezone,
    }
    return page(request, "invites.html", context)
