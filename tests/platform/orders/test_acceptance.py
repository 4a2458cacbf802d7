"""Paid regular and flash-sale orders get confirmed: on payment, or by their merchant in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_merchant, make_product, make_sku, make_user
from tests.platform.fulfilment.fx import make_station
from tests.platform.groupbuy.factories import pay
from tuanbox.audit.models import AuditEntry
from tuanbox.catalog.models import Merchant
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.orders.acceptance import apply_deadlines
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order
from tuanbox.payments.models import Refund
from tuanbox.settings import Settings


def _order(
    session: Session,
    merchant: Merchant | None = None,
    *,
    station: bool = True,
    kind: str = "regular",
) -> Order:
    sku = make_sku(session, make_product(session, merchant or make_merchant(session)))
    return create_order(
        session,
        user_id=make_user(session).id,
        sku_id=sku.id,
        qty=1,
        unit_price_cents=sku.price_cents,
        kind=kind,
        station_id=make_station(session).id if station else None,
    )


def _manual(session: Session, lapse: str = "refund", window_s: int = 3600) -> Merchant:
    merchant = make_merchant(session)
    merchant.order_acceptance, merchant.acceptance_lapse = "manual", lapse
    merchant.acceptance_window_s = window_s
    session.flush()
    return merchant


@pytest.mark.parametrize("kind", ["regular", "flash"])
def test_paid_orders_of_an_auto_merchant_are_confirmed_into_a_wave(
    db_session: Session, settings: Settings, kind: str
) -> None:
    order = _order(db_session, kind=kind)
    pay(db_session, settings, order.id)
    db_session.refresh(order)
    assert order.status == "confirmed" and order.awaiting is None
    assert order.wave_id is not None


def test_a_paid_order_without_a_station_says_so(db_session: Session, settings: Settings) -> None:
    order = _order(db_session, station=False)
    pay(db_session, settings, order.id)
    db_session.refresh(order)
    assert (order.status, order.awaiting) == ("paid", "station")


def test_an_unknown_station_is_refused_at_checkout(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    sku = make_sku(db_session)
    r = client.post(
        "/api/v1/orders",
        json={"sku_id": sku.id, "qty": 1, "station_id": "st-nowhere"},
        headers={**auth_header(settings, make_user(db_session)), "Idempotency-Key": "k-123456789"},
    )
    assert r.status_code == 404 and r.json()["field"] == "station_id", r.text


def test_merchant_staff_accept_or_reject_their_own_orders(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    other_staff = make_user(db_session, "merchant_staff", make_merchant(db_session).id)
    url = f"/api/v1/merchants/{merchant.id}/order-acceptance"
    assert client.get(url, headers=auth_header(settings, staff)).json()["mode"] == "auto"
    r = client.put(
        url,
        json={"mode": "manual", "window_s": 1800, "lapse": "confirm"},
        headers=auth_header(settings, staff),
    )
    assert r.status_code == 200, r.text
    r = client.put(url, json={"mode": "auto"}, headers=auth_header(settings, other_staff))
    assert r.status_code == 404
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "merchant.order_acceptance")
    ).one()
    assert audit.actor_id == staff.id and audit.details["to"]["mode"] == "manual"

    keep, drop = _order(db_session, merchant), _order(db_session, merchant)
    for order in (keep, drop):
        paid_at = datetime.now(UTC)
        pay(db_session, settings, order.id)
        db_session.refresh(order)
        assert (order.status, order.awaiting) == ("paid", "merchant")
        assert order.accept_deadline is not None
        deadline = order.accept_deadline.replace(tzinfo=order.accept_deadline.tzinfo or UTC)
        assert timedelta(seconds=1790) < deadline - paid_at < timedelta(seconds=1810)

    shopper = db_session.get(Order, keep.id)
    assert shopper is not None
    owner = auth_header(settings, make_user(db_session))
    assert client.post(f"/api/v1/orders/{keep.id}/accept", headers=owner).status_code == 403
    stranger = auth_header(settings, other_staff)
    assert client.post(f"/api/v1/orders/{keep.id}/accept", headers=stranger).status_code == 404

    mine = auth_header(settings, staff)
    r = client.post(f"/api/v1/orders/{keep.id}/accept", headers=mine)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "confirmed" and body["awaiting"] is None and body["wave"]
    r = client.post(f"/api/v1/orders/{keep.id}/accept", headers=mine)
    assert r.status_code == 409 and r.json()["code"] == "ILLEGAL_TRANSITION"

    r = client.post(f"/api/v1/orders/{drop.id}/reject", json={"reason": "x"}, headers=mine)
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/orders/{drop.id}/reject", json={"reason": "sold out today"}, headers=mine
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    refund = db_session.scalars(select(Refund).where(Refund.order_id == drop.id)).one()
    assert refund.amount_cents == drop.paid_cents
    actions = set(
        db_session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == staff.id))
    )
    assert {"order.confirmed", "order.cancelled"} <= actions


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "sometimes"},
        {"mode": "manual", "window_s": 2**31},
        {"mode": "manual", "window_s": 59},
        {"mode": "manual", "lapse": "keep"},
        {"mode": "manual\x00"},
    ],
)
def test_bad_policies_are_422(
    client: TestClient, db_session: Session, settings: Settings, body: dict[str, object]
) -> None:
    merchant = make_merchant(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    r = client.put(
        f"/api/v1/merchants/{merchant.id}/order-acceptance",
        json=body,
        headers=auth_header(settings, staff),
    )
    assert r.status_code == 422, r.text


def test_the_deadline_scan_applies_each_merchants_policy_once(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    try:
        with session_scope(factory) as session:
            confirms, refunds = _manual(session, "confirm"), _manual(session, "refund")
            late_ok, late_refund = _order(session, confirms), _order(session, refunds)
            in_time = _order(session, confirms)
            for order in (late_ok, late_refund, in_time):
                pay(session, settings, order.id)
            ids = late_ok.id, late_refund.id, in_time.id
            deadline = session.get(Order, late_ok.id).accept_deadline  # type: ignore[union-attr]
            assert deadline is not None
        # The beat was down for a while: nothing is lost, the deadlines are in the DB.
        past = deadline + timedelta(minutes=5)
        with session_scope(factory) as session:
            session.get(Order, ids[2]).accept_deadline = past + timedelta(hours=1)  # type: ignore[union-attr]
        assert apply_deadlines(factory, now=past, batch=1) == 2
        assert apply_deadlines(factory, now=past) == 0, "applied once"
        with factory() as session:
            ok, refunded, waiting = (session.get(Order, i) for i in ids)
            assert ok is not None and ok.status == "confirmed" and ok.wave_id
            assert refunded is not None and refunded.status == "cancelled"
            assert waiting is not None and (waiting.status, waiting.awaiting) == (
                "paid",
                "merchant",
            )
            refund = session.scalars(select(Refund).where(Refund.order_id == ids[1])).one()
            assert refund.amount_cents == refunded.paid_cents
    finally:
        engine.dispose()
