"""No-reason returns: eligibility, the 7-day window, drop-off, receipt, refund, withdrawal."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_order, make_product, make_sku, make_user
from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Refund
from tuanbox.payments.services import handle_event, process_refund, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

OPS = Actor("ops-1", "ops")


def _picked_up(
    session: Session, settings: Settings, *, returnable: bool = True
) -> tuple[User, Order]:
    shopper = make_user(session)
    sku = make_sku(session, make_product(session, returnable=returnable), price_cents=4200, stock=3)
    order = make_order(session, user=shopper, sku=sku)
    sim = SimPay(settings)
    intent = start_checkout(session, order, sim)
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    handle_event(session, sim.verify_webhook(headers, body))
    for status in ("confirmed", "allocated", "ready_for_pickup", "picked_up"):
        transition(session, order, status, actor=OPS, reason="fulfilment")
    return shopper, order


def test_full_return_through_locker_ends_refunded(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper, order = _picked_up(db_session, settings)
    staff = make_user(db_session, "merchant_staff", order.merchant_id)
    ops = make_user(db_session, "ops")
    r = client.post(
        f"/api/v1/orders/{order.id}/return",
        json={"method": "locker", "reason": "不新鲜"},
        headers=auth_header(settings, shopper),
    )
    assert r.status_code == 201, r.text
    ret = r.json()
    assert ret["status"] == "requested"
    assert (
        client.get(f"/api/v1/orders/{order.id}", headers=auth_header(settings, shopper)).json()[
            "status"
        ]
        == "return_requested"
    )
    twice = client.post(
        f"/api/v1/orders/{order.id}/return",
        json={"method": "locker"},
        headers=auth_header(settings, shopper),
    )
    assert twice.status_code == 409

    early = client.post(
        f"/api/v1/returns/{ret['id']}/received", headers=auth_header(settings, staff)
    )
    assert early.status_code == 409 and early.json()["code"] == "RETURN_STATE"
    assert (
        client.post(
            f"/api/v1/returns/{ret['id']}/dropped-off",
            json={},
            headers=auth_header(settings, shopper),
        ).status_code
        == 403
    )
    dropped = client.post(
        f"/api/v1/returns/{ret['id']}/dropped-off",
        json={"station_id": "st-1"},
        headers=auth_header(settings, ops),
    )
    assert dropped.json()["status"] == "dropped_off" and dropped.json()["station_id"] == "st-1"
    stranger_staff = make_user(db_session, "merchant_staff", make_product(db_session).merchant_id)
    assert (
        client.post(
            f"/api/v1/returns/{ret['id']}/received", headers=auth_header(settings, stranger_staff)
        ).status_code
        == 403
    )
    received = client.post(
        f"/api/v1/returns/{ret['id']}/received", headers=auth_header(settings, staff)
    )
    assert received.status_code == 200 and received.json()["refund_id"]
    refund = db_session.get(Refund, received.json()["refund_id"])
    assert refund is not None and refund.amount_cents == 4200
    assert process_refund(db_session, refund.id, SimPay(settings)) == "succeeded"

    final = client.get(f"/api/v1/orders/{order.id}", headers=auth_header(settings, shopper)).json()
    assert (final["status"], final["refunded_cents"]) == ("refunded", 4200)
    assert (
        client.get(f"/api/v1/returns/{ret['id']}", headers=auth_header(settings, shopper)).json()[
            "status"
        ]
        == "refunded"
    )
    assert (
        client.get(
            f"/api/v1/returns/{ret['id']}", headers=auth_header(settings, make_user(db_session))
        ).status_code
        == 404
    )
    path = (
        db_session.execute(
            sa.text("SELECT to_status FROM order_transitions WHERE order_id = :id ORDER BY id"),
            {"id": order.id},
        )
        .scalars()
        .all()
    )
    assert path[-3:] == ["return_requested", "returned", "refunded"]


def test_not_returnable_and_window_closed(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper, fresh_fish = _picked_up(db_session, settings, returnable=False)
    r = client.post(
        f"/api/v1/orders/{fresh_fish.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper),
    )
    assert r.status_code == 409 and r.json()["code"] == "NOT_RETURNABLE"

    shopper2, old = _picked_up(db_session, settings)
    old.picked_up_at = old.picked_up_at - timedelta(days=settings.return_window_days, seconds=1)  # type: ignore[operator]
    db_session.flush()
    r = client.post(
        f"/api/v1/orders/{old.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper2),
    )
    assert r.status_code == 409 and r.json()["code"] == "RETURN_WINDOW_CLOSED"
    bad = client.post(
        f"/api/v1/orders/{old.id}/return",
        json={"method": "drone"},
        headers=auth_header(settings, shopper2),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "method"

    unpaid = make_order(db_session, user=shopper2)
    r = client.post(
        f"/api/v1/orders/{unpaid.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper2),
    )
    assert r.status_code == 409 and r.json()["code"] == "NOT_RETURNABLE"
    # Someone else's order: indistinguishable from a missing one.
    r = client.post(
        f"/api/v1/orders/{fresh_fish.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper2),
    )
    assert r.status_code == 404


def test_withdraw_before_drop_off(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper, order = _picked_up(db_session, settings)
    ret = client.post(
        f"/api/v1/orders/{order.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper),
    ).json()
    w = client.post(f"/api/v1/returns/{ret['id']}/withdraw", headers=auth_header(settings, shopper))
    assert w.status_code == 200 and w.json()["status"] == "withdrawn"
    db_session.refresh(order)
    assert order.status == "completed"
    # Changed their mind again, still inside the window: a new request is allowed.
    again = client.post(
        f"/api/v1/orders/{order.id}/return",
        json={"method": "courier"},
        headers=auth_header(settings, shopper),
    )
    assert again.status_code == 201
