"""Members' early access to a flash sale, enforced by the admission script on real Redis: in
the window before the start only a shopper whose membership marker runs past now is
admitted; before the window, and for everyone else until the start, the sale is not open.
The marker comes from the database (republish) and a refund takes it away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import auth, make_shop, make_shoppers
from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session, get_session_source
from tuanbox.db.base import utcnow
from tuanbox.membership import markers
from tuanbox.membership.models import Membership
from tuanbox.settings import Settings


@pytest.fixture
def early(database_url: str, redis_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:",
        membership_early_access_s=600,
    )


@pytest.fixture
def flash_client(early: Settings, engine: Engine, db_session: Session) -> Iterator[TestClient]:
    app = create_app(early, engine=engine)

    def _session() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_session_source] = lambda: lambda: nullcontext(db_session)
    with TestClient(app) as c:
        yield c


def _sale(client: TestClient, settings: Settings, session: Session, starts_in: timedelta) -> str:
    shop = make_shop(session)
    now = utcnow()
    made = client.post(
        "/api/v1/flash-sales",
        json={
            "sku_id": shop.sku_id,
            "title": "durian",
            "price_cents": 990,
            "stock_cap": 5,
            "per_user_limit": 1,
            "starts_at": (now + starts_in).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
        },
        headers=auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id),
    )
    assert made.status_code == 201, made.text
    return f"/api/v1/flash-sales/{made.json()['id']}/reservations"


def _reserve(client: TestClient, settings: Settings, url: str, user_id: str) -> tuple[int, str]:
    r = client.post(
        url,
        json={"qty": 1},
        headers={**auth(settings, user_id), "Idempotency-Key": uuid.uuid4().hex[:16]},
    )
    return r.status_code, r.json().get("code", "")


def test_members_enter_in_the_early_window_others_wait(
    flash_client: TestClient, db_session: Session, early: Settings
) -> None:
    member, other, lapsed = make_shoppers(db_session, 3)
    now = utcnow()
    db_session.add_all(
        [
            Membership(
                user_id=member, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30)
            ),
            Membership(
                user_id=lapsed, starts_at=now - timedelta(days=40), ends_at=now - timedelta(days=1)
            ),
        ]
    )
    db_session.flush()
    client = redis.Redis.from_url(early.redis_url)
    try:
        client.delete(markers.PREFIX + member, markers.PREFIX + lapsed)
        url = _sale(flash_client, early, db_session, timedelta(minutes=5))
        # No marker yet (say Redis lost it): the member waits like everyone else.
        assert _reserve(flash_client, early, url, member) == (409, "SALE_NOT_ACTIVE")
        assert markers.republish(db_session, client) >= 1
        assert client.get(markers.PREFIX + lapsed) is None
        assert _reserve(flash_client, early, url, member)[0] == 201
        assert _reserve(flash_client, early, url, other) == (409, "SALE_NOT_ACTIVE")
        assert _reserve(flash_client, early, url, lapsed) == (409, "SALE_NOT_ACTIVE")
        # Before the early window nobody enters, members neither.
        too_soon = _sale(flash_client, early, db_session, timedelta(minutes=30))
        assert _reserve(flash_client, early, too_soon, member) == (409, "SALE_NOT_ACTIVE")
        # A refund ends the membership: its marker goes with it.
        markers.publish(client, member, now, now=now)
        second = _sale(flash_client, early, db_session, timedelta(minutes=5))
        assert _reserve(flash_client, early, second, member) == (409, "SALE_NOT_ACTIVE")
    finally:
        client.delete(markers.PREFIX + member)
        client.close()
