"""A flash sale priced past the bound is refused when created, not when its first order fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import isolated_settings
from tests.platform.groupbuy.factories import auth, make_shop
from tuanbox.db.base import utcnow
from tuanbox.flashsale.models import FlashSale
from tuanbox.settings import Settings

__all__ = ["isolated_settings"]


@pytest.mark.parametrize(
    "overrides", [{"price_cents": 2**31}, {"price_cents": 2**70}, {"per_user_limit": 2**31}]
)
def test_numbers_past_the_bounds_are_refused(
    client: TestClient, db_session: Session, settings: Settings, overrides: dict[str, int]
) -> None:
    shop = make_shop(db_session)
    now = utcnow()
    body = {
        "sku_id": shop.sku_id,
        "title": "Midnight durian",
        "price_cents": 990,
        "stock_cap": 10,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        **overrides,
    }
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    response = client.post("/api/v1/flash-sales", json=body, headers=staff)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "INVALID_INPUT"
    count = sa.select(sa.func.count()).select_from(FlashSale).where(FlashSale.sku_id == shop.sku_id)
    assert db_session.scalar(count) == 0
