"""A bot on one server address, under an operator's per-IP rule scores, through the HTTP API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop
from tests.platform.risk.fx import headers, hit, reviews, shoppers
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """An operator whose area has no carrier NAT gives the per-IP rules teeth (the rules are
    configurable; the defaults score an IP low on purpose)."""
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        risk_rules={
            "accounts_per_ip": {"threshold": 20, "score": 50},
            "orders_per_ip": {"threshold": 25, "score": 40},
        },
    )


def test_a_bot_on_one_server_address_with_bought_accounts_is_held_then_blocked(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """A script on one data-centre address, with bought aged accounts and a fresh device id
    per account, orders once per account. With the operator's per-IP scores the twentieth
    account is held for review and the twenty-fifth order refused."""
    client = client_at("198.51.100.200")
    shop = make_shop(db_session)
    bought = shoppers(db_session, 26, age_days=300)
    answers = []
    for i, user in enumerate(bought):
        hdrs = headers(settings, user, f"bot-device-{i:06d}")
        answers.append(
            client.post("/api/v1/orders", json={"sku_id": shop.sku_id, "qty": 1}, headers=hdrs)
        )
    assert [r.status_code for r in answers] == [201] * 24 + [403] * 2
    held = [
        db_session.scalars(
            sa.select(Order.risk_hold)
            .where(Order.id == r.json()["id"])
            .execution_options(populate_existing=True)
        ).one()
        for r in answers[:24]
    ]
    assert held == [False] * 19 + [True] * 5
    (first,) = reviews(db_session, subject_type="order", subject_id=answers[19].json()["id"])
    accounts = hit(first, "accounts_per_ip")
    assert accounts["count"] == 20 and len(accounts["accounts"]) == 20
    (blocked, _) = reviews(db_session, action="block")
    assert (blocked.subject_type, blocked.subject_id) == ("user", bought[24].id)
    assert hit(blocked, "orders_per_ip")["count"] == 25
    assert answers[24].json()["reference"] == blocked.id
    assert "198.51.100.200" not in json.dumps(first.hits + blocked.hits)
