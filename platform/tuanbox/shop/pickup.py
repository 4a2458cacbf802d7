"""The pickup page (`/orders/{id}/pickup`): the QR full screen with station, locker,
compartment, deadline and fallback code, kept on the phone by a service worker so that it
opens without a connection once loaded (the locker checks the signed token offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.fulfilment import pickup as credentials
from tuanbox.shop import i18n, orderview, qr
from tuanbox.shop.i18n import gettext_for
from tuanbox.shop.orders import OrderId, shopper_or_redirect
from tuanbox.shop.render import STATIC, page

router = APIRouter(include_in_schema=False)
# The worker's scope is /orders/ (where it is served from): it sees only the order pages.
WORKER_PATH = "/orders/pickup-sw.js"
WORKER_POLICY = "default-src 'none'; connect-src 'self'"


@router.get(WORKER_PATH)
def service_worker() -> Response:
    """Served from /orders/ so that its scope covers the pickup pages (a worker's scope is
    at most the folder it comes from); revalidated on every registration check. A worker runs
    under its own script's CSP: this one may fetch from our origin, nothing else."""
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": WORKER_POLICY}
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                    headers=headers)  # fmt: skip


@router.get("/orders/{order_id}/pickup", response_model=None)
def pickup_page(
    order_id: OrderId,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,  # the primary: a deposit just made must show its QR (never the replica)
) -> HTMLResponse | RedirectResponse:
    here = f"/orders/{order_id}/pickup"
    shopper = shopper_or_redirect(request, settings, here)
    if isinstance(shopper, RedirectResponse):
        return shopper
    order = orderview.own_order(db, order_id, shopper.id)
    if order is None:
        return page(request, "order_missing.html", {"shopper": True}, status_code=404)
    _ = gettext_for(i18n.locale_of(request))
    where = orderview.pickup_of(db, order)
    context: dict[str, object] = {
        "shopper": True,
        "order": order,
        "where": where,
        "status_text": orderview.status_words(_, order.status, order.awaiting),
        "tz": settings.station_timezone,
        "worker": WORKER_PATH,
    }
    if where is not None:
        key = credentials.load_signing_key(settings)
        token = credentials.token_for(where.booking, where.compartment, key)
        context["qr_svg"] = qr.svg(token)
        context["code"] = credentials.shown_fallback_code(where.booking, key)
    return page(request, "pickup.html", context)
