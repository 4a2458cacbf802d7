"""The shopper's orders: the list (`/orders`), one order (`/orders/{id}`) with its live
timeline, and its forms: pay through the provider's hosted page, ask for a return, review."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from tuanbox.accounts.deps import Principal
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.security import allow_sources
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, TuanboxError
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders.models import Order
from tuanbox.payments.provider import checkout_origins
from tuanbox.reviews import services as reviews
from tuanbox.reviews.models import MAX_TEXT
from tuanbox.risk.deps import RiskGateDep
from tuanbox.settings import Settings
from tuanbox.shop import i18n, orderview, perks, session
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.render import clock, page

router = APIRouter(include_in_schema=False)
OrderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]
CODE = re.compile(r"[A-Z_]{1,40}")
# What a form post may come back with (?ok=…): the page's words for it.
DONE = ("paid", "return", "withdrawn", "review")


def shopper_or_redirect(
    request: Request, settings: Settings, here: str
) -> Principal | RedirectResponse:
    """The cookie's shopper, or where to send the browser: through a refresh once, else to
    sign in and back here."""
    shopper = session.shopper_from(request, settings)
    if shopper is not None and shopper.role == "shopper":
        return shopper
    if shopper is None and session.can_refresh(request):
        return RedirectResponse(f"{session.REFRESH_PATH}?next={quote(here)}", status_code=303)
    return RedirectResponse(f"/signin?next={quote(here)}", status_code=303)


def _clock(settings: Settings) -> Any:
    return lambda at: clock(at, settings.station_timezone)


def view_of(
    request: Request, db: SessionDep, settings: Settings, order: Order
) -> orderview.OrderView:
    _ = gettext_for(i18n.locale_of(request))
    return orderview.build(db, order, _, clock=_clock(settings), now=utcnow(),
                           return_window_days=settings.return_window_days)  # fmt: skip


def _message(request: Request, code: str | None, ok: str | None) -> tuple[str | None, str]:
    """The words for a form post's outcome (?e=CODE or ?ok=what), by stable code."""
    _ = gettext_for(i18n.locale_of(request))
    if ok in DONE:
        texts = {
            "paid": _("Thank you! Your payment is being confirmed."),
            "return": _("Your return is requested."),
            "withdrawn": _("Your return is withdrawn."),
            "review": _("Thank you for your review."),
        }
        return texts[ok], "ok"
    if not code or not CODE.fullmatch(code):
        return None, "info"
    texts = {
        "NOT_PAYABLE": _("This order cannot be paid any more."),
        "RISK_BLOCKED": _("We could not take this order. Please contact support."),
        "NOT_RETURNABLE": _("This order cannot be returned."),
        "RETURN_WINDOW_CLOSED": _("The return window has closed."),
        "RETURN_STATE": _("This return cannot be changed now."),
        "INVALID_REASON": _("Please keep the reason to 500 characters of plain text."),
        "NOT_REVIEWABLE": _("You can review an order once you have picked it up."),
        "ALREADY_REVIEWED": _("You have already reviewed this order."),
        "INVALID_REVIEW": _("Please give 1 to 5 stars and at most 500 characters."),
        "RATE_LIMITED": _("Too many attempts. Please wait a minute."),
    }
    return texts.get(code, _("Something went wrong. Please try again.")), "error"


@router.get("/orders", response_model=None)
def orders_page(
    request: Request, settings: SettingsDep, db: SessionDep
) -> HTMLResponse | RedirectResponse:
    shopper = shopper_or_redirect(request, settings, "/orders")
    if isinstance(shopper, RedirectResponse):
        return shopper
    _ = gettext_for(i18n.locale_of(request))
    mine = orderview.my_orders(db, shopper.id)
    names = orderview.product_names(db, mine)
    rows = [
        {"order": o, "name": names.get(o.sku_id, ""),
         "status": orderview.status_words(_, o.status, o.awaiting)}
        for o in mine
    ]  # fmt: skip
    return page(request, "orders.html", {"shopper": True, "rows": rows,
                                          "tz": settings.station_timezone})  # fmt: skip


@router.get("/orders/{order_id}", response_model=None)
def order_page(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,  # the primary: checkout lands here, read-your-write (never the replica)
    e: Annotated[str | None, Query(max_length=40)] = None,
    ok: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse | RedirectResponse:
    here = f"/orders/{order_id}"
    shopper = shopper_or_redirect(request, settings, here)
    if isinstance(shopper, RedirectResponse):
        return shopper
    order = orderview.own_order(db, order_id, shopper.id)
    if order is None:
        return _missing(request)
    message, kind = _message(request, e, ok)
    allow_pay_redirect(request, settings)
    view = view_of(request, db, settings, order)
    view.perks = perks.for_order(db, settings, order, shopper.id)  # this page only, not live
    context = {
        "shopper": True,
        "v": view,
        "message": message,
        "message_kind": kind,
        "tz": settings.station_timezone,
        "max_text": MAX_TEXT,
    }
    return page(request, "order.html", context)


def allow_pay_redirect(request: Request, settings: Settings) -> None:
    """A page with a pay form lets it go on to the providers' hosted checkout: the form POSTs
    here and is redirected there, and browsers hold that redirect to the page's form-action."""
    allow_sources(request, "form-action", *checkout_origins(settings))


def _missing(request: Request) -> HTMLResponse:
    return page(request, "order_missing.html", {"shopper": True}, status_code=404)


@router.get("/orders/{order_id}/live.json")
def order_live(
    order_id: OrderId, request: Request, settings: SettingsDep, db: SessionDep
) -> JSONResponse:
    """What the order page polls: a version that changes whenever the page would."""
    shopper = session.shopper_from(request, settings)
    order = orderview.own_order(db, order_id, shopper.id) if shopper is not None else None
    if order is None:
        raise NotFoundError("no such order")
    view = view_of(request, db, settings, order)
    body = {"v": view.version, "status": order.status, "text": view.status_text,
            "live": view.live}  # fmt: skip
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _posting_shopper(request: Request, settings: Settings, order_id: str) -> Principal:
    session.check_same_origin(request)
    shopper = session.shopper_from(request, settings)
    if shopper is None or shopper.role != "shopper":
        from tuanbox.errors import AuthenticationError

        raise AuthenticationError("sign in first")
    return shopper


def _back(order_id: str, *, ok: str | None = None, code: str | None = None) -> RedirectResponse:
    query = f"?ok={ok}" if ok else f"?e={code}" if code else ""
    return RedirectResponse(f"/orders/{order_id}{query}", status_code=303)


def _with_return(url: str, provider: str, settings: Settings, order_id: str) -> str:
    """The hosted page's way back to the order: SimPay takes a local path, WeChat Pay H5 a
    URL-encoded `redirect_url` on its link."""
    if provider == "sim":
        return f"{url}?return={quote(f'/orders/{order_id}', safe='')}"
    if provider == "wechat":
        back = f"{settings.public_base_url.rstrip('/')}/orders/{order_id}"
        return f"{url}{'&' if '?' in url else '?'}redirect_url={quote(back, safe='')}"
    return url


@router.post("/orders/{order_id}/pay")
def pay(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    idem: Idempotent,
    risk: RiskGateDep,
) -> RedirectResponse:
    """Checkout through the payments API's own use case, then off to the provider's page."""
    from tuanbox.payments.views import CheckoutIn, checkout

    shopper = _posting_shopper(request, settings, order_id)
    if orderview.own_order(db, order_id, shopper.id) is None:
        raise NotFoundError("no such order")
    try:
        answer = checkout(order_id, CheckoutIn(), request, shopper, db, settings, idem, risk)
    except TuanboxError as exc:
        db.rollback()
        return _back(order_id, code=exc.code)
    body = json.loads(bytes(answer.body))
    if answer.status_code >= 400:
        return _back(order_id, code=str(body.get("code", "CONFLICT")))
    url = _with_return(body["checkout_url"], body["provider"], settings, order_id)
    return RedirectResponse(url, status_code=303)


ReasonField = Annotated[str, Form(max_length=500)]


@router.post("/orders/{order_id}/return")
def request_return(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    method: Annotated[str, Form(pattern=r"^(locker|courier)$")],
    reason: ReasonField = "",
) -> RedirectResponse:
    """A no-reason return within the window after pickup (the returns use case decides)."""
    from tuanbox.returns import services as returns

    shopper = _posting_shopper(request, settings, order_id)
    if orderview.own_order(db, order_id, shopper.id) is None:
        raise NotFoundError("no such order")
    try:
        returns.request_return(db, order_id, shopper.actor, method=method,
                               reason=reviews.clean_text(reason),
                               window_days=settings.return_window_days)  # fmt: skip
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return _back(order_id, code="INVALID_REASON" if exc.code == "INVALID_REVIEW" else exc.code)
    return _back(order_id, ok="return")


@router.post("/orders/{order_id}/return/withdraw")
def withdraw_return(
    order_id: OrderId, request: Request, settings: SettingsDep, db: SessionDep
) -> RedirectResponse:
    from tuanbox.returns import services as returns
    from tuanbox.returns.models import ReturnRequest

    shopper = _posting_shopper(request, settings, order_id)
    if orderview.own_order(db, order_id, shopper.id) is None:
        raise NotFoundError("no such order")
    row = db.query(ReturnRequest).filter(ReturnRequest.order_id == order_id).one_or_none()
    if row is None:
        return _back(order_id, code="RETURN_STATE")
    try:
        returns.withdraw(db, row.id, shopper.actor)
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return _back(order_id, code=exc.code)
    return _back(order_id, ok="withdrawn")


@router.post("/orders/{order_id}/review")
def write_review(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    rating: Annotated[int, Form(ge=1, le=5)],
    text: Annotated[str, Form(max_length=MAX_TEXT * 2)] = "",
) -> RedirectResponse:
    """One review per picked-up order (reviews.services decides)."""
    shopper = _posting_shopper(request, settings, order_id)
    try:
        reviews.write_review(db, order_id, shopper.id, rating=rating, text=text, now=utcnow())
        db.commit()
    except TuanboxError as exc:
        db.rollback()
        return _back(order_id, code=exc.code)
    return _back(order_id, ok="review")
