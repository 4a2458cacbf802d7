"""The flash-sale buy button (home page and sale page): the flash-sale API's own hot path
(same admission script, limits and idempotency) for the cookie's shopper, then the order."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from tuanbox.api.deps import SessionSourceDep, SettingsDep
from tuanbox.db.base import utcnow
from tuanbox.errors import AuthenticationError, TuanboxError
from tuanbox.ratelimit.deps import client_ip
from tuanbox.shop import session
from tuanbox.shop.campaign import Id
from tuanbox.shop.home import station_of

router = APIRouter(include_in_schema=False)


@router.post("/f/{sale_id}/buy")
async def buy(
    sale_id: Id, request: Request, settings: SettingsDep, source: SessionSourceDep
) -> RedirectResponse:
    """Reserve one unit for the chosen station; land on the order page to pay, or back on
    the sale with the refusal's code (sold out, limit, too many attempts)."""
    from tuanbox.accounts.tokens import decode_access_token
    from tuanbox.api.redis_async import redis_for
    from tuanbox.flashsale import admission
    from tuanbox.flashsale import views as flash_api
    from tuanbox.flashsale.counters import AsyncFlashCounters

    session.check_same_origin(request)
    here = f"/f/{sale_id}"
    token = request.cookies.get(session.ACCESS, "")
    try:
        # Revocation and token version are the admission script's checks (one Redis trip).
        user = decode_access_token(settings, token) if 0 < len(token) <= 4096 else None
    except AuthenticationError:
        user = None
    if user is None or user.role != "shopper":
        return RedirectResponse(f"/signin?next={here}", status_code=303)
    request.state.principal = user
    req = admission.Request(
        sale_id=sale_id,
        user=user,
        # A fresh key per press: the form cannot carry one (the sale page is cached), and a
        # second press is refused by the per-shopper limit anyway.
        key=uuid.uuid4().hex,
        qty=1,
        station_id=station_of(request),
        client_ip=client_ip(request),
        now=utcnow(),
    )
    try:
        async with redis_for(request) as client:
            counters = AsyncFlashCounters(client)
            _status, out = await flash_api.hot_path(request).reserve(
                req, counters, flash_api.counters_for(request), source
            )
    except TuanboxError as exc:
        if exc.status >= 500:
            raise
        return RedirectResponse(f"{here}?e={exc.code}", status_code=303)
    return RedirectResponse(f"/orders/{out['order_id']}", status_code=303)
