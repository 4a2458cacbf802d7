"""Smoke: buy through the API, pay through SimPay's hosted page, read the order back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_sku, make_user
from tuanbox.catalog.models import Sku
from tuanbox.settings import Settings


def test_buy_pay_and_read_back(client: TestClient, db_session: Session, settings: Settings) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, price_cents=1250, stock=3)
    headers = auth_header(settings, shopper)

    created = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 2}, headers=headers)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "pending_payment"
    assert order["total_cents"] == 2500
    db_session.refresh(sku)
    assert (sku.stock_on_hand, sku.stock_reserved) == (3, 2)

    intent = client.post(f"/api/v1/orders/{order['id']}/payments", json={}, headers=headers)
    assert intent.status_code == 201, intent.text
    page = client.get(f"/pay/sim/{intent.json()['id']}")
    assert page.status_code == 200 and "25.00" in page.text
    confirm = client.post(f"/pay/sim/{intent.json()['id']}/confirm")
    assert confirm.status_code == 200, confirm.text

    read = client.get(f"/api/v1/orders/{order['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json()["status"] == "paid"
    assert read.json()["paid_cents"] == 2500
    assert db_session.get(Sku, sku.id) is not None
