"""Orders API: buying, visibility, shopper cancel rules, expiry of unpaid orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import (
    auth_header,
    make_merchant,
    make_order,
    make_product,
    make_sku,
    make_user,
)
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order
from tuanbox.orders.services import expire_unpaid, transition
from tuanbox.settings import Settings


def test_buy_validates_and_reserves(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, stock=2, price_cents=500)
    h = auth_header(settings, shopper)
    assert (
        client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 0}, headers=h).status_code
        == 422
    )
    missing = client.post("/api/v1/orders", json={"qty": 1}, headers=h)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "sku_id"
    assert (
        client.post("/api/v1/orders", json={"sku_id": "nope", "qty": 1}, headers=h).status_code
        == 404
    )
    too_many = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 3}, headers=h)
    assert too_many.status_code == 409 and too_many.json()["code"] == "INSUFFICIENT_STOCK"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0, (
        "nothing half-written"
    )
    ok = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 2}, headers=h)
    assert ok.status_code == 201 and ok.json()["total_cents"] == 1000
    sold_out = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=h)
    assert sold_out.status_code == 409
    staff = make_user(db_session, "merchant_staff", make_product(db_session).merchant_id)
    assert (
        client.post(
            "/api/v1/orders",
            json={"sku_id": sku.id, "qty": 1},
            headers=auth_header(settings, staff),
        ).status_code
        == 403
    )


def test_visibility(client: TestClient, db_session: Session, settings: Settings) -> None:
    owner, stranger = make_user(db_session), make_user(db_session)
    product = make_product(db_session)
    order = make_order(db_session, user=owner, sku=make_sku(db_session, product))
    own_staff = make_user(db_session, "merchant_staff", product.merchant_id)
    other_staff = make_user(db_session, "merchant_staff", make_merchant(db_session).id)
    url = f"/api/v1/orders/{order.id}"
    for user, expected in (
        (owner, 200),
        (own_staff, 200),
        (make_user(db_session, "ops"), 200),
        (make_user(db_session, "admin"), 200),
        (stranger, 404),
        (other_staff, 404),
    ):
        assert client.get(url, headers=auth_header(settings, user)).status_code == expected, (
            user.role
        )
    assert client.get(url).status_code == 401
    listed = client.get(
        f"/api/v1/merchants/{product.merchant_id}/orders", headers=auth_header(settings, own_staff)
    )
    assert [o["id"] for o in listed.json()] == [order.id]
    other = client.get(
        f"/api/v1/merchants/{product.merchant_id}/orders",
        headers=auth_header(settings, other_staff),
    )
    assert other.status_code == 403
    mine = client.get("/api/v1/orders", headers=auth_header(settings, owner)).json()
    assert [o["id"] for o in mine] == [order.id]
    assert client.get("/api/v1/orders", headers=auth_header(settings, stranger)).json() == []


def test_shopper_cancel_rules(client: TestClient, db_session: Session, settings: Settings) -> None:
    owner, stranger = make_user(db_session), make_user(db_session)
    sku = make_sku(db_session, stock=3)
    order = make_order(db_session, user=owner, sku=sku, qty=2)
    assert (
        client.post(
            f"/api/v1/orders/{order.id}/cancel", json={}, headers=auth_header(settings, stranger)
        ).status_code
        == 404
    )
    r = client.post(
        f"/api/v1/orders/{order.id}/cancel", json={}, headers=auth_header(settings, owner)
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    db_session.refresh(sku)
    assert sku.stock_reserved == 0
    again = client.post(
        f"/api/v1/orders/{order.id}/cancel", json={}, headers=auth_header(settings, owner)
    )
    assert again.status_code == 409

    shipped = make_order(db_session, user=owner, sku=sku)
    ops = Actor(id="ops", role="ops")
    for status in ("paid", "confirmed"):
        transition(db_session, shipped, status, actor=ops, reason="t")
    late = client.post(
        f"/api/v1/orders/{shipped.id}/cancel", json={}, headers=auth_header(settings, owner)
    )
    assert late.status_code == 409 and late.json()["code"] == "ILLEGAL_TRANSITION"
    assert (
        client.post(
            f"/api/v1/orders/{shipped.id}/transitions",
            json={"to": "cancelled", "reason": "shopper tries"},
            headers=auth_header(settings, owner),
        ).status_code
        == 403
    )


def test_unpaid_orders_expire_and_release_stock(fresh_database: Callable[[], str]) -> None:
    engine = make_engine(fresh_database())
    try:
        _expire_scenario(make_session_factory(engine))
    finally:
        engine.dispose()


def _expire_scenario(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        sku = make_sku(session, stock=10)
        overdue = [make_order(session, sku=sku, qty=2) for _ in range(3)]
        fresh = make_order(session, sku=sku, qty=1)
        for o in overdue:
            o.pay_deadline = utcnow() - timedelta(seconds=1)
        ids, fresh_id, sku_id = [o.id for o in overdue], fresh.id, sku.id
    assert expire_unpaid(factory, batch=2) == 3
    assert expire_unpaid(factory) == 0, "a second scan (a restarted beat) finds nothing to do"
    with factory() as session:
        statuses = {row[0]: row[1] for row in session.execute(sa.select(Order.id, Order.status))}
        sku_row = session.get(Sku, sku_id)
        assert sku_row is not None
        assert {statuses[i] for i in ids} == {"expired"}
        assert statuses[fresh_id] == "pending_payment"
        assert (sku_row.stock_on_hand, sku_row.stock_reserved) == (10, 1)
