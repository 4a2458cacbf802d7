"""Stock and lot quantities: a ceiling on restocks and lots, a 422 problem beyond it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_product, make_sku, make_user
from tuanbox.bounds import MAX_STOCK
from tuanbox.catalog.models import Lot, Sku
from tuanbox.settings import Settings


def test_a_restock_past_2_31_units_is_a_problem_not_a_500(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """A SKU holding more than the ceiling (written before it existed) refuses to grow."""
    admin = auth_header(settings, make_user(db_session, role="admin"))
    sku = make_sku(db_session, stock=2**31 - 5)
    response = client.post(f"/api/v1/skus/{sku.id}/restock", json={"add": 10}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "STOCK_LIMIT"


def test_restock_past_the_ceiling_is_refused_and_changes_nothing(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, role="admin"))
    sku = make_sku(db_session, stock=MAX_STOCK - 5)
    response = client.post(f"/api/v1/skus/{sku.id}/restock", json={"add": 6}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "STOCK_LIMIT"
    db_session.expire_all()
    assert db_session.get(Sku, sku.id).stock_on_hand == MAX_STOCK - 5  # type: ignore[union-attr]
    response = client.post(f"/api/v1/skus/{sku.id}/restock", json={"add": 5}, headers=admin)
    assert response.status_code == 200 and response.json()["stock_on_hand"] == MAX_STOCK


def test_a_lot_quantity_past_the_bound_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, role="admin"))
    product = make_product(db_session)
    body = {"lot_code": "B2026-12-06", "quantity": 2**31}
    response = client.post(f"/api/v1/products/{product.id}/lots", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "quantity"
    assert db_session.query(Lot).filter_by(product_id=product.id).count() == 0
    body["quantity"] = MAX_STOCK
    response = client.post(f"/api/v1/products/{product.id}/lots", json=body, headers=admin)
    assert response.status_code == 201, response.text
