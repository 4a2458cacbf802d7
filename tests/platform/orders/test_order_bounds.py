"""Order money past 32 bits: a 100-unit order of the dearest item is stored and read back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_sku, make_user
from tuanbox.bounds import MAX_PRICE_CENTS
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


def test_an_order_total_past_2_31_is_stored(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = auth_header(settings, make_user(db_session))
    sku = make_sku(db_session, price_cents=MAX_PRICE_CENTS, stock=1000)
    response = client.post("/api/v1/orders", json={"sku_id": sku.id, "qty": 100}, headers=shopper)
    assert response.status_code == 201, response.text
    total = 100 * MAX_PRICE_CENTS
    assert total > 2**31 and response.json()["total_cents"] == total
    db_session.expire_all()
    stored = db_session.get(Order, response.json()["id"])
    assert stored is not None and stored.total_cents == total
    again = client.get(f"/api/v1/orders/{stored.id}", headers=shopper)
    assert again.json()["total_cents"] == total


def test_a_price_past_the_bound_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, role="admin"))
    sku = make_sku(db_session)
    response = client.post(
        f"/api/v1/products/{sku.product_id}/skus",
        json={"name": "gold box", "price_cents": MAX_PRICE_CENTS + 1},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "price_cents"
