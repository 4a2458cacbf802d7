"""Hostile input gets a 4xx problem, never a 500: NUL anywhere in a request, ids past INTEGER."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, isolated_settings, make_sku, make_user
from tests.platform.groupbuy.factories import auth, make_shop
from tuanbox.accounts.models import Address
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.models import Campaign
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

__all__ = ["isolated_settings"]


def _assert_nul_refused(response: Any, field: str) -> None:  # the TestClient's Response
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    assert body["errors"] == [
        {"field": field, "message": "must not contain NUL characters", "type": "nul_character"}
    ]
    assert "\x00" not in response.text


def _count(session: Session, model: type) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_nul_in_a_path_parameter(client: TestClient) -> None:
    response = client.get("/api/v1/merchants/ab%00cd")
    _assert_nul_refused(response, "path")
    assert response.json()["instance"] == "/api/v1/merchants/ab%00cd"


@pytest.mark.parametrize(
    "query", ["merchant_id=ab%00cd", "merchant_id=%00", "x=1&merchant_id=a%00"]
)
def test_nul_in_a_query_parameter(client: TestClient, query: str) -> None:
    _assert_nul_refused(client.get(f"/api/v1/products?{query}"), "query.merchant_id")


def test_nul_in_a_json_field_writes_nothing(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = auth_header(settings, make_user(db_session))
    sku = make_sku(db_session)
    before = _count(db_session, Order)
    response = client.post(
        "/api/v1/orders", json={"sku_id": sku.id + "\x00", "qty": 1}, headers=shopper
    )
    _assert_nul_refused(response, "sku_id")
    # The same, spelled as the JSON escape by hand.
    raw = '{"sku_id": "' + sku.id + '\\u0000", "qty": 1}'
    response = client.post(
        "/api/v1/orders",
        content=raw.encode(),
        headers={**shopper, "Content-Type": "application/json"},
    )
    _assert_nul_refused(response, "sku_id")
    assert _count(db_session, Order) == before


def test_nul_nested_in_json_writes_nothing(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    now = utcnow()
    body = {
        "sku_id": shop.sku_id,
        "title": "Blueberries",
        "kind": "fixed",
        "tiers": [{"members": 2, "price_cents": 900}],
        "max_size": 2,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "station_ids": ["st-1", "st-\x002"],
    }
    _assert_nul_refused(client.post("/api/v1/campaigns", json=body, headers=staff), "station_ids.1")
    body["station_ids"] = []
    body["tiers"] = [{"members": 2, "price_cents": 900, "note\x00": "x"}]
    _assert_nul_refused(
        client.post("/api/v1/campaigns", json=body, headers=staff), "tiers.0.note\\0"
    )
    assert db_session.scalar(sa.select(Campaign).where(Campaign.sku_id == shop.sku_id)) is None


def test_nul_in_a_form_field(client: TestClient) -> None:
    response = client.post("/ops/login", data={"login": "ops\x00", "password": "whatever"})
    _assert_nul_refused(response, "login")


def test_a_backslash_u_text_is_not_a_nul(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """Only a decoded NUL is refused: the six characters `\\u0000` are ordinary text."""
    shopper = make_user(db_session)
    text = r"Room 5, C:\u0000 Lane"
    response = client.post(
        "/api/v1/me/addresses", json={"text": text}, headers=auth_header(settings, shopper)
    )
    assert response.status_code == 201, response.text
    assert response.json()["text"] == text
    assert _count(db_session, Address) >= 1


# INTEGER ids refuse 2^31 (PostgreSQL's cast would fail the query); BIGINT ones refuse 2^63.
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", f"/ops/holds/{2**31}/release"),
        ("post", f"/ops/holds/{2**70}/reject"),
        ("get", f"/ops/episodes/{2**31}/evidence.svg"),
        ("post", f"/api/v1/ops/alerts/{2**63}/acknowledge"),
        ("post", f"/ops/alerts/{2**70}/resolve"),
        ("get", f"/api/v1/refunds?min_attempts={2**31}"),
    ],
)
def test_integers_past_their_column_are_refused(
    client: TestClient, db_session: Session, settings: Settings, method: str, url: str
) -> None:
    ops = auth_header(settings, make_user(db_session, role="ops"))
    body = {"note": "probe from a test"}
    response = (
        client.get(url, headers=ops)
        if method == "get"
        else client.post(url, json=body, headers=ops)
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "INVALID_INPUT"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/api/v1/auth/otp", "application/json", b'{"phone": "\xff\xfe"}'),  # not UTF-8
        (
            "/api/v1/products/p-1/images",
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nNone--xyz--\r\n",  # a part with no headers
        ),
    ],
)
def test_a_body_that_cannot_be_read_is_invalid_input(
    client: TestClient, path: str, content_type: str, body: bytes
) -> None:
    """Like JSON that does not parse: a 422 problem, as documented, not FastAPI's bare 400."""
    response = client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "INVALID_INPUT"
    assert problem["errors"][0]["type"] == "body_unreadable", problem
