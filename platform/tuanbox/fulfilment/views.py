"""Fulfilment API: lockers, run sheets, remote opens, alerts; an order's pickup status and QR."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Principal, require_roles
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.bounds import BigSerialId, SerialId
from tuanbox.db.base import utcnow
from tuanbox.errors import PermissionDeniedError
from tuanbox.fulfilment import alerts, ops, pickup
from tuanbox.fulfilment.allocation import queue_position
from tuanbox.fulfilment.errors import FulfilmentNotFoundError, PickupNotReadyError
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.fulfilment.schemas import (
    AckIn,
    AlertOut,
    CommandOut,
    FulfilmentOut,
    LockerOut,
    RemoteOpenIn,
    ResolveIn,
    RunSheetLineOut,
    RunSheetOut,
)
from tuanbox.lockers.models import Compartment
from tuanbox.orders.models import Order

router = APIRouter(tags=["fulfilment"])
# A merchant's couriers and staff read that merchant's run sheet lines; ops and admins all.
RunSheetReader = Annotated[
    Principal, Depends(require_roles("courier", "merchant_staff", "ops", "admin"))
]


@router.get("/api/v1/lockers", response_model=list[LockerOut], responses=problems(401, 403))
def list_lockers(user: OpsOrAdmin, session: SessionDep, settings: SettingsDep) -> list[LockerOut]:
    """Every locker with presence, last contact, agent version, open alerts and queued commands."""
    views = ops.locker_overview(
        session, now=utcnow(), offline_after=timedelta(seconds=settings.locker_offline_after_s)
    )
    return [LockerOut.model_validate(v) for v in views]


@router.get(
    "/api/v1/lockers/{locker_id}/run-sheet",
    response_model=RunSheetOut,
    responses=problems(401, 403, 404),
)
def run_sheet(
    locker_id: str, user: RunSheetReader, session: SessionDep, settings: SettingsDep
) -> RunSheetOut:
    """The courier's list: deposit (or retrieval) code per compartment.

    Couriers and merchant staff get their own merchant's compartments only; ops and admins
    get every one.
    """
    if user.role in ("ops", "admin"):
        merchant_id = None
    elif user.merchant_id is None:
        # Never read a missing merchant as "every merchant".
        raise PermissionDeniedError("this account belongs to no merchant")
    else:
        merchant_id = user.merchant_id
    lines = ops.run_sheet(session, locker_id, merchant_id=merchant_id, settings=settings)
    return RunSheetOut(
        locker_id=locker_id, lines=[RunSheetLineOut.model_validate(line) for line in lines]
    )


@router.post(
    "/api/v1/lockers/{locker_id}/compartments/{compartment_id}/open",
    response_model=CommandOut,
    status_code=202,
    responses=problems(401, 403, 404, 409, 422),
)
def remote_open(
    locker_id: str,
    compartment_id: SerialId,
    body: RemoteOpenIn,
    user: OpsOrAdmin,
    session: SessionDep,
    settings: SettingsDep,
) -> CommandOut:
    """Queue a remote open; the answer is the command, whose status follows the locker's ack."""
    command = ops.remote_open(
        session,
        locker_id=locker_id,
        compartment_id=compartment_id,
        actor=user.actor,
        reason=body.reason,
        settings=settings,
        now=utcnow(),
    )
    session.commit()
    return CommandOut.model_validate(command)


@router.get("/api/v1/ops/alerts", response_model=list[AlertOut], responses=problems(401, 403))
def list_alerts(
    user: OpsOrAdmin,
    session: SessionDep,
    status: Annotated[list[str] | None, Query()] = None,
) -> list[AlertOut]:
    """Ops alerts by status (default: open and acknowledged), newest first."""
    rows = alerts.list_alerts(session, statuses=status or ("open", "acknowledged"))
    return [AlertOut.model_validate(a) for a in rows]


@router.post(
    "/api/v1/ops/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=problems(401, 403, 404, 409, 422),
)
def acknowledge_alert(
    alert_id: BigSerialId, body: AckIn, user: OpsOrAdmin, session: SessionDep
) -> AlertOut:
    """Ops: take an open alert (audited); 409 if it is no longer open."""
    alert = alerts.acknowledge(session, alert_id, user.actor, body.note)
    session.commit()
    return AlertOut.model_validate(alert)


@router.post(
    "/api/v1/ops/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    responses=problems(401, 403, 404, 409, 422),
)
def resolve_alert(
    alert_id: BigSerialId, body: ResolveIn, user: OpsOrAdmin, session: SessionDep
) -> AlertOut:
    """Ops: close an alert with a note saying what was done (audited)."""
    alert = alerts.resolve(session, alert_id, user.actor, body.note)
    session.commit()
    return AlertOut.model_validate(alert)


@router.get(
    "/api/v1/ops/fulfilment-exceptions",
    response_model=list[FulfilmentOut],
    responses=problems(401, 403),
)
def fulfilment_exceptions(user: OpsOrAdmin, session: SessionDep) -> list[FulfilmentOut]:
    """The exception queue: orders whose locker command expired or that fit no compartment."""
    rows = session.scalars(
        select(FulfilmentOrder)
        .where(FulfilmentOrder.state == "exception")
        .order_by(FulfilmentOrder.updated_at)
        .limit(500)
    )
    return [_fulfilment_out(session, fo) for fo in rows]


def _fulfilment_out(session: SessionDep, fo: FulfilmentOrder) -> FulfilmentOut:
    booking = session.get(Booking, fo.booking_id) if fo.booking_id else None
    comp = session.get(Compartment, booking.compartment_id) if booking else None
    return FulfilmentOut(
        order_id=fo.order_id,
        state=fo.state,
        queue_position=queue_position(session, fo),
        station_id=fo.station_id,
        locker_id=booking.locker_id if booking else None,
        compartment=comp.label if comp else None,
        pickup_deadline=booking.pickup_deadline if booking else None,
        exception_reason=fo.exception_reason,
    )


def _own_fulfilment(session: SessionDep, order_id: str, user: Principal) -> FulfilmentOrder:
    order = session.get(Order, order_id)
    fo = session.get(FulfilmentOrder, order_id)
    # Someone else's order answers exactly like a missing one.
    if (
        order is None
        or fo is None
        or (order.user_id != user.id and user.role not in ("ops", "admin"))
    ):
        raise FulfilmentNotFoundError("no fulfilment for this order")
    return fo


@router.get(
    "/api/v1/orders/{order_id}/fulfilment",
    response_model=FulfilmentOut,
    responses=problems(401, 404),
)
def order_fulfilment(order_id: str, user: CurrentUser, session: SessionDep) -> FulfilmentOut:
    """Where the order is: queued (with its position), booked at a locker, or an exception."""
    return _fulfilment_out(session, _own_fulfilment(session, order_id, user))


@router.get(
    "/api/v1/orders/{order_id}/pickup-qr.{fmt}",
    response_class=Response,
    responses={
        200: file_response("The pickup QR", "image/png", "image/svg+xml"),
        **problems(401, 404, 409),
    },
)
def pickup_qr(
    order_id: str,
    fmt: Literal["png", "svg"],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """The pickup QR for the order's owner, once the parcel is in the locker."""
    order = session.get(Order, order_id)
    if order is None or order.user_id != user.id:
        raise FulfilmentNotFoundError("no pickup for this order")
    fo = _own_fulfilment(session, order_id, user)
    booking = session.get(Booking, fo.booking_id) if fo.booking_id else None
    if booking is None or booking.state != "deposited":
        raise PickupNotReadyError("the parcel is not waiting in a locker")
    comp = session.get(Compartment, booking.compartment_id)
    assert comp is not None
    token = pickup.token_for(booking, comp, pickup.load_signing_key(settings))
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return Response(
        pickup.render_qr(token, fmt), media_type=media, headers={"Cache-Control": "no-store"}
    )
