"""Returns API: request a return, follow it, drop-off and receipt, withdraw."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Shopper
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.errors import PermissionDeniedError
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders.models import Order
from tuanbox.orders.views import visible_order
from tuanbox.returns import services
from tuanbox.returns.models import ReturnRequest

router = APIRouter(prefix="/api/v1", tags=["returns"])


class ReturnIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"method": "locker", "reason": "changed my mind"}]}
    )

    method: Literal["locker", "courier"]
    reason: str = Field(default="", max_length=500)


class DropOffIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"station_id": "st-001"}, {"tracking": "SF1234567890"}]}
    )

    station_id: str | None = Field(default=None, max_length=36)
    tracking: str | None = Field(default=None, max_length=100)


class ReturnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    method: str
    status: str
    reason: str
    station_id: str | None
    courier_tracking: str | None
    dropped_off_at: datetime | None
    received_at: datetime | None
    refund_id: str | None


@router.post(
    "/orders/{order_id}/return",
    status_code=201,
    response_model=ReturnOut,
    responses=problems(401, 403, 404, 409, 422),
)
def request_return(
    order_id: str,
    body: ReturnIn,
    user: Shopper,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
) -> JSONResponse:
    """Ask for a no-reason return (returnable products, within the window after pickup)."""
    visible_order(session, order_id, user)

    def work() -> tuple[int, object]:
        row = services.request_return(
            session,
            order_id,
            user.actor,
            method=body.method,
            reason=body.reason,
            window_days=settings.return_window_days,
        )
        return 201, ReturnOut.model_validate(row).model_dump(mode="json")

    return idem.respond(session, user.id, {"order": order_id, **body.model_dump()}, work)


@router.get("/returns/{return_id}", response_model=ReturnOut, responses=problems(401, 404))
def get_return(return_id: str, user: CurrentUser, session: SessionDep) -> ReturnRequest:
    """A return request and where it stands (its shopper, the merchant's staff, ops)."""
    row = services.get_return(session, return_id)
    visible_order(session, row.order_id, user)  # someone else's return reads as not found
    return row


@router.post(
    "/returns/{return_id}/dropped-off",
    response_model=ReturnOut,
    responses=problems(401, 403, 404, 409, 422),
)
def dropped_off(
    return_id: str, body: DropOffIn, user: OpsOrAdmin, session: SessionDep
) -> ReturnRequest:
    """Ops (or the fulfilment flow): the goods are in a locker or with the courier."""
    before = services.get_return(session, return_id, lock=True).status
    row = services.mark_dropped_off(
        session, return_id, user.actor, station_id=body.station_id, tracking=body.tracking
    )
    record(session, user.actor, "return.dropped_off", "return", row.id,
           details={"order_id": row.order_id, "station_id": body.station_id},
           before={"status": before}, after={"status": row.status})  # fmt: skip
    session.commit()
    return row


@router.post(
    "/returns/{return_id}/received",
    response_model=ReturnOut,
    responses=problems(401, 403, 404, 409, 422),
)
def received(return_id: str, user: CurrentUser, session: SessionDep) -> ReturnRequest:
    """The merchant's staff (or ops) confirm the goods came back: the refund is issued."""
    row = services.get_return(session, return_id)
    order = session.get(Order, row.order_id)
    assert order is not None
    if user.role not in ("ops", "admin") and not user.staff_of(order.merchant_id):
        raise PermissionDeniedError("only the merchant's staff or ops confirm a return")
    row = services.mark_received(session, return_id, user.actor)
    session.commit()
    return row


@router.post(
    "/returns/{return_id}/withdraw",
    response_model=ReturnOut,
    responses=problems(401, 403, 404, 409, 422),
)
def withdraw(return_id: str, user: Shopper, session: SessionDep) -> ReturnRequest:
    """The shopper changes their mind: withdraw a return not yet dropped off."""
    row = services.withdraw(session, return_id, user.actor)
    session.commit()
    return row
