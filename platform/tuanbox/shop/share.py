"""Sharing a group: the poster PNG of a group order (`/orders/{id}/poster.png`), and the
page its QR opens (`/j/{group}?by=…`), which lands on the group and records the inviter
(first touch wins, self-referral refused; see tuanbox.referrals)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.catalog.models import Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.groupbuy.services import as_utc, group_progress
from tuanbox.referrals import services as referrals
from tuanbox.settings import Settings
from tuanbox.shop import i18n, listing, poster, session
from tuanbox.shop.home import station_of
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.orders import OrderId, shopper_or_redirect
from tuanbox.shop.orderview import own_order
from tuanbox.shop.render import money, page

router = APIRouter(include_in_schema=False)
GroupId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]
RefQuery = Annotated[str | None, Query(alias=referrals.PARAM, max_length=referrals.MAX_REF)]
# The first inviter's reference seen by a signed-out browser, per group: "group~ref".
REF_COOKIE = "tuanbox_ref"
REF_COOKIE_S = 7 * 86400


def share_url(settings: Settings, group_id: str, inviter_id: str) -> str:
    ref = referrals.ref_for(settings, group_id, inviter_id)
    return f"{settings.public_base_url.rstrip('/')}/j/{group_id}?{referrals.PARAM}={ref}"


@router.get("/orders/{order_id}/poster.png", response_model=None)
def poster_png(
    order_id: OrderId, request: Request, settings: SettingsDep, db: SessionDep
) -> Response:
    shopper = shopper_or_redirect(request, settings, f"/orders/{order_id}")
    if isinstance(shopper, RedirectResponse):
        return shopper
    order = own_order(db, order_id, shopper.id)
    group = db.get(Group, order.group_id) if order is not None and order.group_id else None
    if order is None or group is None:
        raise NotFoundError("no group to share for this order")
    campaign = db.get(Campaign, group.campaign_id)
    sku = db.get(Sku, order.sku_id)
    product = db.get(Product, sku.product_id) if sku is not None else None
    assert campaign is not None and sku is not None and product is not None  # FKs
    _ = gettext_for(i18n.locale_of(request))
    p = group_progress(campaign, group, utcnow())
    tiers = " · ".join(
        _("%(n)s people %(price)s") % {"n": n, "price": money(int(price))}
        for n, price in campaign.tiers
    )
    price = p.current_price_cents or min(int(price) for _n, price in campaign.tiers)
    text = poster.PosterText(
        brand=_("Tuanbox"),
        product=campaign.title,
        price=money(price),
        list_price=money(sku.price_cents) if sku.price_cents > price else None,
        tiers=tiers,
        progress=_("Only %(n)s more to go") % {"n": p.needed} if p.needed else None,
        caption=_("Scan to join my group"),
        url=share_url(settings, group.id, shopper.id),
    )
    headers = {
        "Cache-Control": "private, no-store",
        "Content-Disposition": 'inline; filename="tuanbox-group.png"',
    }
    return Response(poster.render(text), media_type="image/png", headers=headers)


def _cookie_ref(request: Request, group_id: str) -> str | None:
    value = request.cookies.get(REF_COOKIE, "")
    group, _, ref = value.partition("~")
    return ref if group == group_id and ref else None


@router.get("/j/{group_id}", response_model=None)
def join_landing(
    group_id: GroupId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    by: RefQuery = None,
) -> HTMLResponse:
    """The group a share link names, with a way to join it; the inviter is recorded for a
    signed-in shopper, and remembered by a signed-out browser until it signs in here."""
    group = db.get(Group, group_id)
    campaign = db.get(Campaign, group.campaign_id) if group is not None else None
    if group is None or campaign is None:
        return page(request, "order_missing.html", {"shopper": False}, status_code=404)
    now = utcnow()
    # The first reference this browser saw for the group wins over a later link's.
    first = _cookie_ref(request, group_id)
    ref = first if referrals.inviter_from(settings, group_id, first) else by
    inviter = referrals.inviter_from(settings, group_id, ref)
    shopper = session.shopper_from(request, settings)
    recorded = None
    if shopper is not None and inviter is not None:
        recorded = referrals.record(db, group_id=group_id, invitee_id=shopper.id,
                                    inviter_id=inviter, now=now)  # fmt: skip
        db.commit()
    view = listing.campaign(db, campaign.id, now)
    assert view is not None
    p = group_progress(campaign, group, now)
    here = f"/j/{group_id}" + (f"?{referrals.PARAM}={quote(ref, safe='')}" if ref else "")
    context = {
        "shopper": shopper is not None,
        "k": view,
        "group": group,
        "p": p,
        "deadline": as_utc(group.deadline_at),
        "open": group.status == "open" and as_utc(group.deadline_at) > now,
        "invited": inviter is not None and (shopper is None or inviter != shopper.id),
        "own": shopper is not None and inviter == shopper.id,
        "recorded": recorded,
        "stations": [
            s for s in listing.stations(db) if not view.station_ids or s.id in view.station_ids
        ],
        "station_id": station_of(request),
        "signin": f"/signin?next={quote(here, safe='')}",
        "tz": settings.station_timezone,
    }
    response = page(request, "join.html", context)
    if shopper is None and inviter is not None and first is None:
        response.set_cookie(REF_COOKIE, f"{group_id}~{ref}", max_age=REF_COOKIE_S, path="/j/",
                            httponly=True, samesite="lax")  # fmt: skip
    return response
