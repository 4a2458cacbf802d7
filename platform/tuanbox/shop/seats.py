"""The campaign page's forms: open a group or join one, through the group-buy API's own use
cases (same limits, idempotency and risk screens), as the shopper of the session cookie."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep, session_source_for
from tuanbox.errors import TuanboxError
from tuanbox.groupbuy import views as groupbuy_api
from tuanbox.groupbuy.schemas import JoinIn
from tuanbox.idempotency.deps import Idempotent
from tuanbox.risk.deps import RiskGateDep
from tuanbox.shop import session
from tuanbox.shop.campaign import Id
from tuanbox.shop.home import STATION_ID

router = APIRouter(include_in_schema=False)
# Where a shopper lands after taking a seat: the order page, which takes the payment.
ORDER_PAGE = "/orders/{order_id}"


def page_shopper(request: Request, settings: SettingsDep) -> None:
    """Make the cookie's shopper the request's principal (the join rate limit counts per
    shopper by it); nobody when signed out — the route then sends them to sign in."""
    principal = session.shopper_from(request, settings)
    if principal is not None and principal.role == "shopper":
        request.state.principal = principal


def _seat(
    request: Request,
    settings: SettingsDep,
    campaign_id: str,
    call: Any,
) -> RedirectResponse:
    """Run the API's own use case (same guards, limits and risk screens) for the cookie's
    shopper; land on the order page, or back on the campaign with the refusal's code."""
    session.check_same_origin(request)
    here = f"/c/{campaign_id}"
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return RedirectResponse(f"/signin?next={here}", status_code=303)
    try:
        answer = call(principal)
    except TuanboxError as exc:
        return RedirectResponse(f"{here}?e={exc.code}", status_code=303)
    if answer.status_code >= 400:  # an idempotent replay of a refusal
        code = json.loads(bytes(answer.body)).get("code", "CONFLICT")
        return RedirectResponse(f"{here}?e={code}", status_code=303)
    order_id = json.loads(bytes(answer.body))["order_id"]
    return RedirectResponse(ORDER_PAGE.format(order_id=order_id), status_code=303)


StationField = Annotated[str | None, Form(max_length=36)]


def _join_body(station_id: str | None) -> JoinIn:
    chosen = station_id if station_id and STATION_ID.fullmatch(station_id) else None
    return JoinIn(qty=1, station_id=chosen)


@router.post(
    "/c/{campaign_id}/groups",
    dependencies=[Depends(page_shopper), Depends(groupbuy_api.JOIN_LIMIT)],
)
def open_group(
    campaign_id: Id,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    idem: Idempotent,
    risk: RiskGateDep,
    station_id: StationField = None,
) -> RedirectResponse:
    body = _join_body(station_id)
    return _seat(request, settings, campaign_id, lambda user: groupbuy_api.open_group(
        campaign_id, body, user, db, settings, idem, risk))  # fmt: skip


@router.post(
    "/c/{campaign_id}/groups/{group_id}/join",
    dependencies=[Depends(page_shopper), Depends(groupbuy_api.JOIN_LIMIT)],
)
def join_group(
    campaign_id: Id,
    group_id: Id,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    idem: Idempotent,
    risk: RiskGateDep,
    station_id: StationField = None,
) -> RedirectResponse:
    body = _join_body(station_id)

    def join(user: Any) -> JSONResponse:
        stored = groupbuy_api.join_in_transaction(
            session_source_for(request), risk, user.id, group_id, body, idem.key, request.url.path
        )
        return JSONResponse(stored.body, status_code=stored.status)

    return _seat(request, settings, campaign_id, join)
