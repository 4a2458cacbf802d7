"""Fulfilment HTTP API: ops locker list, run sheet, remote open, alerts, order status and QR."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import decode_command
from edge.protocol.token import verify_token
from tests.platform.factories import auth_header, make_user
from tests.platform.fulfilment.fx import (
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.audit.models import AuditEntry
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import alerts, lifecycle, pickup
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.settings import Settings


def _setup(db_session: Session, settings: Settings, orders: int = 1):
    bind_settings(db_session, settings)
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    shopper = make_shopper(db_session)
    sku = make_sku(db_session)
    made = [
        make_order(db_session, user=shopper, sku=sku, station_id=station.id) for _ in range(orders)
    ]
    for order in made:
        confirm(db_session, order)
    return locker, shopper, made


def test_ops_see_lockers_and_shoppers_do_not(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    locker, shopper, _ = _setup(db_session, settings)
    alerts.open_alert(
        db_session, kind="door_left_open", locker_id=locker.id, compartment_id=None, detail="x"
    )
    ops_user = make_user(db_session, "ops")
    rows = client.get("/api/v1/lockers", headers=auth_header(settings, ops_user)).json()
    mine = next(r for r in rows if r["id"] == locker.id)
    assert mine["online"] is False and mine["open_alerts"] == 1 and mine["pending_commands"] == 1
    denied = client.get("/api/v1/lockers", headers=auth_header(settings, shopper))
    assert denied.status_code == 403 and denied.json()["code"] == "FORBIDDEN"


def test_courier_run_sheet_lists_deposit_codes(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    locker, _, orders = _setup(db_session, settings)
    booking = db_session.scalars(select(Booking)).one()
    courier = make_user(db_session, "courier", orders[0].merchant_id)
    sheet = client.get(
        f"/api/v1/lockers/{locker.id}/run-sheet", headers=auth_header(settings, courier)
    ).json()
    assert sheet["lines"] == [
        {
            "compartment": "0-1",
            "size": "S",
            "zone": "ambient",
            "action": "deposit",
            "code": courier_code(settings, booking),
            "booking_ref": booking.ref,
            "order_ids": [orders[0].id],
        }
    ]


def test_remote_open_needs_ops_and_a_reason_and_is_audited(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    locker, shopper, _ = _setup(db_session, settings)
    comp = locker.compartments[0]
    url = f"/api/v1/lockers/{locker.id}/compartments/{comp.id}/open"
    ops_user = make_user(db_session, "ops")
    assert (
        client.post(url, json={"reason": "x"}, headers=auth_header(settings, ops_user)).status_code
        == 422
    )
    assert (
        client.post(
            url, json={"reason": "stuck parcel"}, headers=auth_header(settings, shopper)
        ).status_code
        == 403
    )
    resp = client.post(
        url, json={"reason": "stuck parcel"}, headers=auth_header(settings, ops_user)
    )
    assert resp.status_code == 202 and resp.json()["type"] == "open"
    row = db_session.get(OutboxCommand, resp.json()["id"])
    assert row is not None
    payload = decode_command(row.body).payload
    assert payload.compartment == "0-1" and payload.operator == ops_user.id  # type: ignore[union-attr]
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "locker.remote_open")
    ).one()
    assert audit.actor_id == ops_user.id and audit.reason == "stuck parcel"


def test_alerts_acknowledge_and_resolve_are_audited(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    locker, _, _ = _setup(db_session, settings)
    alert = alerts.open_alert(
        db_session, kind="unlock_failed", locker_id=locker.id, compartment_id=None, detail="jam"
    )
    headers = auth_header(settings, make_user(db_session, "ops"))
    listed = client.get("/api/v1/ops/alerts", headers=headers).json()
    assert [a["id"] for a in listed if a["id"] == alert.id] and listed[0]["next_step"]
    acked = client.post(f"/api/v1/ops/alerts/{alert.id}/acknowledge", json={}, headers=headers)
    assert acked.json()["status"] == "acknowledged"
    again = client.post(f"/api/v1/ops/alerts/{alert.id}/acknowledge", json={}, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "ALERT_STATE"
    done = client.post(
        f"/api/v1/ops/alerts/{alert.id}/resolve", json={"note": "lock replaced"}, headers=headers
    )
    assert done.json()["status"] == "resolved"
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == str(alert.id))
    ).all()
    assert sorted(actions) == ["alert.acknowledge", "alert.resolve"]


def test_queue_position_and_pickup_qr_for_the_owner_only(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    locker, shopper, orders = _setup(db_session, settings, orders=1)
    other = make_shopper(db_session)
    late = make_order(
        db_session, user=other, sku=make_sku(db_session), station_id=orders[0].station_id
    )
    confirm(db_session, late)
    status = client.get(
        f"/api/v1/orders/{late.id}/fulfilment", headers=auth_header(settings, other)
    )
    assert status.json()["state"] == "queued" and status.json()["queue_position"] == 1
    own = auth_header(settings, shopper)
    not_yet = client.get(f"/api/v1/orders/{orders[0].id}/pickup-qr.png", headers=own)
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "PICKUP_NOT_READY"

    booking = db_session.scalars(select(Booking)).one()
    ctx = lifecycle.Context(settings, pickup.load_signing_key(settings))
    assert lifecycle.deposited(db_session, booking, ctx=ctx, now=datetime.now(UTC))
    png = client.get(f"/api/v1/orders/{orders[0].id}/pickup-qr.png", headers=own)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = client.get(f"/api/v1/orders/{orders[0].id}/pickup-qr.svg", headers=own)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    token = pickup.token_for(booking, locker.compartments[0], ctx.signing_key)
    checked = verify_token(
        token, ctx.signing_key.public_key(), locker_id=locker.id, now=datetime.now(UTC)
    )
    assert checked.cmp == "0-1" and checked.oid == booking.ref
    stranger = client.get(
        f"/api/v1/orders/{orders[0].id}/pickup-qr.png", headers=auth_header(settings, other)
    )
    assert stranger.status_code == 404
    fo = db_session.get(FulfilmentOrder, orders[0].id)
    assert fo is not None and orders[0].status == "ready_for_pickup"


def test_ops_exception_queue_lists_orders_that_fit_nowhere(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    _, _, orders = _setup(db_session, settings)
    big = make_order(
        db_session,
        user=make_shopper(db_session),
        sku=make_sku(db_session, "L"),
        station_id=orders[0].station_id,
        qty=5,
    )
    confirm(db_session, big)
    ops_headers = auth_header(settings, make_user(db_session, "ops"))
    rows = client.get("/api/v1/ops/fulfilment-exceptions", headers=ops_headers).json()
    mine = [r for r in rows if r["order_id"] == big.id]
    assert (
        mine and mine[0]["state"] == "exception" and "20 size units" in mine[0]["exception_reason"]
    )
    assert all(r["order_id"] != orders[0].id for r in rows)
    shopper = auth_header(settings, make_shopper(db_session))
    assert client.get("/api/v1/ops/fulfilment-exceptions", headers=shopper).status_code == 403
