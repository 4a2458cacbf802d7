"""A shopper refused by their own flash-sale window spends nothing of their IP's window."""

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
        flash_per_user_per_10s=1,
        flash_per_ip_per_10s=3,
    )


def test_per_user_window_is_checked_before_the_ip_window(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    users = make_shoppers(db_session, 4)
    url = f"/api/v1/flash-sales/{uuid.uuid4()}/reservations"  # no such sale: 404 once admitted

    def reserve(user: str) -> int:
        headers = {**auth(settings, user), "Idempotency-Key": uuid.uuid4().hex}
        return client.post(url, json={"qty": 1}, headers=headers).status_code

    assert [reserve(users[0]) for _ in range(3)] == [404, 429, 429]
    assert [reserve(u) for u in users[1:]] == [404, 404, 429]
