"""Run sheets per merchant: staff and couriers see only their merchant's lines, ops see all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import STAFF_PASSWORD, auth_header, make_user
from tests.platform.fulfilment.fx import (
    TEST_ACTOR,
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.models import User
from tuanbox.catalog.models import Product, Sku
from tuanbox.fulfilment import lifecycle, pickup
from tuanbox.fulfilment.hooks import bind_settings, settings_of
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Locker
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.settings import Settings


@dataclass
class World:
    locker: Locker
    merchant_a: str
    merchant_b: str
    orders_a: list[Order]
    orders_b: list[Order]
    cancelled_b: Order  # deposited, then cancelled: its booking waits for a retrieval


def _merchant_of(session: Session, sku: Sku) -> str:
    product = session.get(Product, sku.product_id)
    assert product is not None
    return product.merchant_id


def _booking_of(session: Session, order: Order) -> Booking:
    fo = session.get(FulfilmentOrder, order.id)
    assert fo is not None and fo.booking_id is not None
    booking = session.get(Booking, fo.booking_id)
    assert booking is not None
    return booking


def _world(session: Session, settings: Settings) -> World:
    """Merchants A and B at one locker; one shopper buys from both; one B order is cancelled."""
    bind_settings(session, settings)
    station = make_station(session)
    # M compartments hold two S parcels, so one shopper's orders could share one.
    locker, _ = make_locker(session, station.id, [CompartmentSpec(0, i, "M") for i in range(1, 7)])
    sku_a, sku_b = make_sku(session), make_sku(session)
    alice, bob, carol, dave = (make_shopper(session) for _ in range(4))
    orders_a = [
        make_order(session, user=alice, sku=sku_a, station_id=station.id),
        make_order(session, user=carol, sku=sku_a, station_id=station.id),
    ]
    orders_b = [
        make_order(session, user=bob, sku=sku_b, station_id=station.id),
        make_order(session, user=carol, sku=sku_b, station_id=station.id),
    ]
    cancelled_b = make_order(session, user=dave, sku=sku_b, station_id=station.id)
    for order in [*orders_a, *orders_b, cancelled_b]:
        confirm(session, order)
    ctx = lifecycle.Context(settings, pickup.load_signing_key(settings))
    lifecycle.deposited(session, _booking_of(session, cancelled_b), ctx=ctx, now=datetime.now(UTC))
    transition(session, cancelled_b, "cancelled", actor=TEST_ACTOR, reason="shopper cancelled")
    assert _booking_of(session, cancelled_b).state == "returning"
    merchant_a, merchant_b = _merchant_of(session, sku_a), _merchant_of(session, sku_b)
    return World(locker, merchant_a, merchant_b, orders_a, orders_b, cancelled_b)


def _expected(session: Session, orders: list[Order]) -> dict[str, tuple[str, str, list[str]]]:
    """booking_ref -> (action, code, order ids) the sheet must show for these orders."""
    lines: dict[str, tuple[str, str, list[str]]] = {}
    for order in orders:
        booking = _booking_of(session, order)
        returning = booking.state == "returning"
        code = courier_code(settings_of(session), booking, "retrieval" if returning else "deposit")
        action = "retrieve" if returning else "deposit"
        _, _, ids = lines.setdefault(booking.ref, (action, code, []))
        ids.append(order.id)
    return {ref: (a, c, sorted(ids)) for ref, (a, c, ids) in lines.items()}


def _sheet(
    client: TestClient, settings: Settings, user: User, locker_id: str
) -> dict[str, tuple[str, str, list[str]]]:
    resp = client.get(f"/api/v1/lockers/{locker_id}/run-sheet", headers=auth_header(settings, user))
    assert resp.status_code == 200, resp.text
    return {
        line["booking_ref"]: (line["action"], line["code"], sorted(line["order_ids"]))
        for line in resp.json()["lines"]
    }


def test_merchant_staff_see_only_their_merchants_order_ids_and_codes(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    w = _world(db_session, settings)
    staff_a = make_user(db_session, "merchant_staff", w.merchant_a)
    staff_b = make_user(db_session, "merchant_staff", w.merchant_b)

    sheet_a = _sheet(client, settings, staff_a, w.locker.id)
    assert sheet_a == _expected(db_session, w.orders_a)
    shown = {oid for _, _, ids in sheet_a.values() for oid in ids}
    assert shown.isdisjoint(o.id for o in [*w.orders_b, w.cancelled_b])
    # B's deposit codes and B's retrieval code (after the cancel) are not A's business.
    b_refs = {_booking_of(db_session, o).ref for o in [*w.orders_b, w.cancelled_b]}
    assert b_refs.isdisjoint(sheet_a)

    sheet_b = _sheet(client, settings, staff_b, w.locker.id)
    assert sheet_b == _expected(db_session, [*w.orders_b, w.cancelled_b])
    assert (
        "retrieve",
        courier_code(settings, _booking_of(db_session, w.cancelled_b), "retrieval"),
    ) in {(action, code) for action, code, _ in sheet_b.values()}


def test_orders_of_two_merchants_never_share_a_compartment(
    db_session: Session, settings: Settings
) -> None:
    w = _world(db_session, settings)
    carol_a, carol_b = w.orders_a[1], w.orders_b[1]
    assert carol_a.user_id == carol_b.user_id
    booking_a, booking_b = _booking_of(db_session, carol_a), _booking_of(db_session, carol_b)
    assert booking_a.id != booking_b.id
    assert (booking_a.merchant_id, booking_b.merchant_id) == (w.merchant_a, w.merchant_b)
    # Orders of one shopper and one merchant still share, as before.
    station_id = carol_a.station_id
    sku_a = db_session.get(Sku, carol_a.sku_id)
    assert sku_a is not None and station_id is not None
    carol = db_session.get(User, carol_a.user_id)
    assert carol is not None
    again = make_order(db_session, user=carol, sku=sku_a, station_id=station_id)
    confirm(db_session, again)
    assert _booking_of(db_session, again).id == booking_a.id


def test_a_courier_sees_their_merchants_lines_and_nothing_else(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    w = _world(db_session, settings)
    courier = make_user(db_session, "courier", w.merchant_b)
    assert _sheet(client, settings, courier, w.locker.id) == _expected(
        db_session, [*w.orders_b, w.cancelled_b]
    )
    headers = auth_header(settings, courier)
    missing = client.get("/api/v1/lockers/no-such-locker/run-sheet", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "LOCKER_NOT_FOUND"
    # A courier's token opens the run sheet only, not the staff or ops side of the merchant.
    comp = w.locker.compartments[0]
    denied = [
        client.get("/api/v1/lockers", headers=headers),
        client.get(f"/api/v1/merchants/{w.merchant_b}/orders", headers=headers),
        client.get(f"/api/v1/orders/{w.orders_b[0].id}", headers=headers),
        client.post(
            f"/api/v1/lockers/{w.locker.id}/compartments/{comp.id}/open",
            json={"reason": "let me in"},
            headers=headers,
        ),
    ]
    assert [r.status_code for r in denied] == [403, 403, 404, 403]


def test_ops_and_admins_see_every_line_shoppers_none(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    w = _world(db_session, settings)
    everything = _expected(db_session, [*w.orders_a, *w.orders_b, w.cancelled_b])
    assert len(everything) == 5  # carol's two merchants' orders sit in two compartments
    for role in ("ops", "admin"):
        assert _sheet(client, settings, make_user(db_session, role), w.locker.id) == everything
    shopper = db_session.get(User, w.orders_a[0].user_id)
    assert shopper is not None
    resp = client.get(
        f"/api/v1/lockers/{w.locker.id}/run-sheet", headers=auth_header(settings, shopper)
    )
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize("role", ["merchant_staff", "courier"])
def test_merchant_roles_without_a_merchant_see_no_run_sheet(
    client: TestClient, db_session: Session, settings: Settings, role: str
) -> None:
    w = _world(db_session, settings)
    # Such accounts cannot be created; a token claiming one must not read as "every merchant".
    headers = auth_header(settings, Principal(id="u-1", role=role, merchant_id=None))
    resp = client.get(f"/api/v1/lockers/{w.locker.id}/run-sheet", headers=headers)
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"


def test_admins_create_couriers_of_a_merchant_who_then_sign_in(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    w = _world(db_session, settings)
    admin = auth_header(settings, make_user(db_session, "admin"))
    body = {"role": "courier", "login": "courier.b.li", "password": STAFF_PASSWORD}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 422
    created = client.post(
        "/api/v1/users", json={**body, "merchant_id": w.merchant_b}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "courier"
    assert created.json()["merchant_id"] == w.merchant_b
    token = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "login": "courier.b.li", "password": STAFF_PASSWORD},
    )
    assert token.status_code == 200 and token.json()["user"]["role"] == "courier"
    sheet = client.get(
        f"/api/v1/lockers/{w.locker.id}/run-sheet",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    refs = {line["booking_ref"] for line in sheet.json()["lines"]}
    assert refs == set(_expected(db_session, [*w.orders_b, w.cancelled_b]))
