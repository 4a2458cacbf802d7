"""Flash-sale HTTP API: staff create, shoppers reserve, limits answer 429 with Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import auth, make_shop, make_shoppers
from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session, get_session_source
from tuanbox.db.base import utcnow
from tuanbox.settings import Settings


@pytest.fixture
def limited(database_url: str, redis_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:",
        flash_per_user_per_10s=2,  # a 422 (no key) is refused before the limiter counts it
        flash_per_ip_per_10s=100,
    )


@pytest.fixture
def flash_client(limited: Settings, engine: Engine, db_session: Session) -> Iterator[TestClient]:
    app = create_app(limited, engine=engine)

    def _session() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_session_source] = lambda: lambda: nullcontext(db_session)
    with TestClient(app) as c:
        yield c


def test_create_reserve_and_rate_limit(
    flash_client: TestClient, db_session: Session, limited: Settings
) -> None:
    shop = make_shop(db_session)
    buyer, other = make_shoppers(db_session, 2)
    now = utcnow()
    body = {
        "sku_id": shop.sku_id,
        "title": "durian",
        "price_cents": 990,
        "stock_cap": 3,
        "per_user_limit": 1,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    assert (
        flash_client.post(
            "/api/v1/flash-sales", json=body, headers=auth(limited, buyer)
        ).status_code
        == 403
    )
    r = flash_client.post(
        "/api/v1/flash-sales",
        json=body,
        headers=auth(limited, shop.staff_id, "merchant_staff", shop.merchant_id),
    )
    assert r.status_code == 201, r.text
    sale = r.json()
    url = f"/api/v1/flash-sales/{sale['id']}/reservations"
    headers = auth(limited, buyer)
    assert flash_client.post(url, json={"qty": 1}, headers=headers).status_code == 422  # no key
    ok = flash_client.post(
        url, json={"qty": 1}, headers={**headers, "Idempotency-Key": "buy-00000001"}
    )
    assert ok.status_code == 201 and ok.json()["remaining"] == 2
    second = flash_client.post(
        url, json={"qty": 1}, headers={**headers, "Idempotency-Key": "buy-00000002"}
    )
    assert second.status_code == 409 and second.json()["code"] == "USER_LIMIT_EXCEEDED"
    third = flash_client.post(
        url, json={"qty": 1}, headers={**headers, "Idempotency-Key": "buy-00000003"}
    )
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    assert third.json()["code"] == "RATE_LIMITED"
    # Another shopper is not affected by the first one's window.
    r = flash_client.post(
        url, json={"qty": 1}, headers={**auth(limited, other), "Idempotency-Key": "buy-00000004"}
    )
    assert r.status_code == 201
    assert flash_client.get(f"/api/v1/flash-sales/{sale['id']}").json()["remaining"] == 1
    key = {"Idempotency-Key": "buy-00000005"}
    assert flash_client.post(url, json={"qty": 1}, headers=key).status_code == 401
    staff = auth(limited, shop.staff_id, "merchant_staff", shop.merchant_id)
    assert flash_client.post(url, json={"qty": 1}, headers={**staff, **key}).status_code == 403
