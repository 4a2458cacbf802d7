"""The shopper's coupons and points: checkout with coupons and points (`/orders/{id}/checkout`),
and the wallet (`/me/coupons`): coupons, the points balance and its history, and coupons to
buy with points. The coupons package decides everything; these pages only ask and show."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.coupons import checkout, services
from tuanbox.coupons.domain import aware
from tuanbox.coupons.models import CouponTemplate, OrderDiscount
from tuanbox.coupons.views import policy_of
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, TuanboxError
from tuanbox.orders.domain import OrderStatus
from tuanbox.points import services as points
from tuanbox.shop import i18n, orderview
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.orders import _posting_shopper, allow_pay_redirect, shopper_or_redirect
from tuanbox.shop.orderview import Gettext
from tuanbox.shop.perks import for_order
from tuanbox.shop.render import page

router = APIRouter(include_in_schema=False)
OrderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]
CODE = re.compile(r"[A-Z_]{1,40}")
MAX_POINTS = 10**9


def _words(_: Gettext) -> dict[str, str]:
    """Each refusal's code in the shopper's words."""
    return {
        "COUPON_EXPIRED": _("This coupon has expired."),
        "COUPON_NOT_YET_VALID": _("This coupon is not valid yet."),
        "COUPON_THRESHOLD_NOT_MET": _("Spend more to use this coupon."),
        "COUPON_NOT_APPLICABLE": _("This coupon cannot be used on this order."),
        "NOT_A_NEW_USER": _("This coupon is for a first order only."),
        "NEW_USER_TAKEN": _("One new-user coupon per person: another account of yours had one."),
        "COUPON_UNAVAILABLE": _("This coupon is already in use."),
        "COUPON_LIMIT_REACHED": _("You already have as many of these as allowed."),
        "STACKING_REFUSED": _("These discounts cannot be combined."),
        "POINTS_INSUFFICIENT": _("You do not have enough points."),
        "POINTS_OVER_LIMIT": _("That is more points than this order takes."),
        "DISCOUNT_LOCKED": _("This order's discount can no longer change."),
        "COUPON_TEMPLATE_NOT_FOUND": _("This offer is no longer available."),
    }


def _message(_: Gettext, code: str | None, ok: str | None) -> tuple[str | None, str]:
    if ok == "applied":
        return _("Your discount is applied."), "ok"
    if ok == "bought":
        return _("The coupon is in your wallet."), "ok"
    if not code or not CODE.fullmatch(code):
        return None, "info"
    return _words(_).get(code, _("Something went wrong. Please try again.")), "error"


def _coupon_words(_: Gettext, template: CouponTemplate) -> str:
    """What a coupon gives, e.g. "¥5 off orders of ¥39" or "15% off, up to ¥20"."""
    from tuanbox.shop.render import money

    if template.kind == "percent_off":
        text = _("%(pct)s%% off") % {"pct": template.percent_off}
        if template.max_off_cents:
            text += " · " + _("up to %(cap)s") % {"cap": money(template.max_off_cents)}
    else:
        text = _("%(amount)s off") % {"amount": money(template.amount_off_cents)}
    if template.threshold_cents:
        text += " · " + _("on orders of %(min)s") % {"min": money(template.threshold_cents)}
    else:
        text += " · " + _("no minimum")
    return text


def _back(order_id: str, *, ok: str | None = None, code: str | None = None) -> RedirectResponse:
    query = f"?ok={ok}" if ok else f"?e={code}" if code else ""
    return RedirectResponse(f"/orders/{order_id}/checkout{query}", status_code=303)


@router.get("/orders/{order_id}/checkout", response_model=None)
def checkout_page(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    e: Annotated[str | None, Query(max_length=40)] = None,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse | RedirectResponse:
    """The order's coupons (each with what it takes off, or why not), points, and Pay."""
    here = f"/orders/{order_id}/checkout"
    shopper = shopper_or_redirect(request, settings, here)
    if isinstance(shopper, RedirectResponse):
        return shopper
    order = orderview.own_order(db, order_id, shopper.id)
    if order is None:
        raise NotFoundError("no such order")
    if order.status != OrderStatus.PENDING_PAYMENT:
        return RedirectResponse(f"/orders/{order.id}", status_code=303)
    _ = gettext_for(i18n.locale_of(request))
    now = utcnow()
    policy = policy_of(settings)
    rows = []
    for coupon, template, off, why in checkout.applicable(db, order, policy, now):
        rows.append(
            {
                "id": coupon.id,
                "name": template.name,
                "terms": _coupon_words(_, template),
                "until": aware(coupon.valid_until),
                "off": off,
                "why": _words(_).get(why or "", why) if why else None,
                "chosen": coupon.order_id == order.id,
            }
        )
    applied = db.get(OrderDiscount, order.id)
    current = applied if applied is not None and applied.status == "applied" else None
    balance = points.cached_balance(db, shopper.id)
    cap = min(order.total_cents * policy.max_points_share_pct // 100, max(0, order.total_cents - 1))
    message, kind = _message(_, e, ok)
    allow_pay_redirect(request, settings)
    context: dict[str, Any] = {
        "shopper": True,
        "order": order,
        "name": orderview.product_names(db, [order]).get(order.sku_id, ""),
        "coupons": rows,
        "current": current,
        "balance": balance,
        "max_points": min(balance, cap // policy.cents_per_point),
        "cents_per_point": policy.cents_per_point,
        "perks": for_order(db, settings, order, shopper.id),
        "message": message,
        "message_kind": kind,
        "tz": settings.station_timezone,
    }
    return page(request, "checkout.html", context)


@router.post("/orders/{order_id}/checkout")
def apply_discount(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    coupon: Annotated[list[Annotated[str, Form(max_length=36)]] | None, Form(max_length=5)] = None,
    points_used: Annotated[int, Form(alias="points", ge=0, le=MAX_POINTS)] = 0,
) -> RedirectResponse:
    """Apply the chosen coupons and points (the coupons package's checkout decides)."""
    shopper = _posting_shopper(request, settings, order_id)
    if orderview.own_order(db, order_id, shopper.id) is None:
        raise NotFoundError("no such order")
    try:
        checkout.apply(db, order_id, shopper.id, coupon or [], points_used, policy_of(settings))
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return _back(order_id, code=str(exc.extra.get("reason", exc.code)))
    return _back(order_id, ok="applied")


def _offers(db: Session, now: datetime) -> list[CouponTemplate]:
    return list(
        db.scalars(
            select(CouponTemplate)
            .where(
                CouponTemplate.points_cost.is_not(None),
                CouponTemplate.active.is_(True),
                CouponTemplate.valid_until > now,
            )
            .order_by(CouponTemplate.points_cost, CouponTemplate.id)
            .limit(20)
        )
    )


@router.get("/me/coupons", response_model=None)
def wallet_page(
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    e: Annotated[str | None, Query(max_length=40)] = None,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse | RedirectResponse:
    """My coupons and points: what I hold, my balance and its history, coupons for points."""
    shopper = shopper_or_redirect(request, settings, "/me/coupons")
    if isinstance(shopper, RedirectResponse):
        return shopper
    _ = gettext_for(i18n.locale_of(request))
    now = utcnow()
    balance, debt = points.balance_of(db, shopper.id)
    coupons = [
        {
            "name": t.name,
            "terms": _coupon_words(_, t),
            "status": c.status,
            "until": aware(c.valid_until),
            "order_id": c.order_id,
        }
        for c, t in services.wallet(db, shopper.id)
    ]
    offers = [
        {
            "id": t.id,
            "name": t.name,
            "terms": _coupon_words(_, t),
            "cost": t.points_cost,
            "affordable": (t.points_cost or 0) <= balance,
        }
        for t in _offers(db, now)
    ]
    message, kind = _message(_, e, ok)
    context: dict[str, Any] = {
        "shopper": True,
        "coupons": coupons,
        "balance": balance,
        "debt": debt,
        "entries": points.entries(db, shopper.id, limit=20),
        "offers": offers,
        "form_key": uuid.uuid4().hex,
        "message": message,
        "message_kind": kind,
        "tz": settings.station_timezone,
    }
    return page(request, "my_coupons.html", context)


@router.post("/me/coupons/redeem")
def buy_with_points(
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    template_id: Annotated[str, Form(min_length=1, max_length=36)],
    key: Annotated[str, Form(pattern=r"^[0-9a-f]{32}$")],
) -> RedirectResponse:
    """Buy a coupon with points; the form's own key makes a resubmitted form a no-op."""
    shopper = _posting_shopper(request, settings, "")
    try:
        services.redeem_points(db, shopper.id, template_id, f"{shopper.id}:shop:{key}")
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return RedirectResponse(f"/me/coupons?e={exc.code}", status_code=303)
    return RedirectResponse("/me/coupons?ok=bought", status_code=303)
