"""Group joins (and openings, which take a seat) are rate limited per shopper and per IP."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import auth, make_shoppers
from tuanbox.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        group_join_per_user_per_min=3,
        group_join_per_ip_per_min=6,
    )


def _join(client: TestClient, settings: Settings, user: str, group: str) -> int:
    headers = {**auth(settings, user), "Idempotency-Key": uuid.uuid4().hex}
    return client.post(f"/api/v1/groups/{group}/join", json={}, headers=headers).status_code


def test_joins_are_limited_per_shopper_then_per_ip(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    alice, bob, carol = make_shoppers(db_session, 3)
    group = str(uuid.uuid4())  # no such group: the limit answers before any lookup
    assert [_join(client, settings, alice, group) for _ in range(4)] == [404, 404, 404, 429]
    r = client.post(
        f"/api/v1/campaigns/{uuid.uuid4()}/groups",
        json={},
        headers={**auth(settings, alice), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED", "opening is a join"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Alice's refused tries did not spend the address's window: 3 of 6 used.
    assert [_join(client, settings, bob, group) for _ in range(3)] == [404, 404, 404]
    assert _join(client, settings, carol, group) == 429, "per-IP window full"
