"""Campaign creation refuses what would fail later: prices past the bound, unknown stations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import isolated_settings
from tests.platform.groupbuy.factories import auth, fixed_spec, make_shop, make_shoppers
from tuanbox.bounds import MAX_PRICE_CENTS
from tuanbox.db.base import utcnow
from tuanbox.groupbuy import services
from tuanbox.groupbuy.domain import InvalidCampaignError
from tuanbox.groupbuy.models import Campaign
from tuanbox.lockers.services import create_station
from tuanbox.settings import Settings

__all__ = ["isolated_settings"]


def _body(sku_id: str, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "sku_id": sku_id,
        "title": "Blueberries, tiered",
        "kind": "tiered",
        "tiers": [{"members": 2, "price_cents": 900}, {"members": 3, "price_cents": 800}],
        "max_size": 3,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "per_user_limit": 2,
    }
    body.update(overrides)
    return body


def _campaigns_of(session: Session, sku_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(Campaign).where(Campaign.sku_id == sku_id)
    return int(session.scalar(query) or 0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"tiers": [{"members": 2, "price_cents": 2**31}, {"members": 3, "price_cents": 800}]},
        {"kind": "fixed", "tiers": [{"members": 2, "price_cents": 2**31}], "max_size": 2},
        {"tiers": [{"members": 2, "price_cents": 2**63}]},
        {"leader_price_cents": 2**31},
        {"max_size": 2**31},
        {"per_user_limit": 2**31},
    ],
)
def test_numbers_past_the_bounds_are_refused_at_creation(
    client: TestClient, db_session: Session, settings: Settings, overrides: dict[str, Any]
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    response = client.post("/api/v1/campaigns", json=_body(shop.sku_id, **overrides), headers=staff)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "INVALID_INPUT"
    assert _campaigns_of(db_session, shop.sku_id) == 0


def test_the_dearest_tier_sells_through_the_api(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """At the bound, a seat's order (price x qty) lands in the BIGINT columns."""
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    body = _body(
        shop.sku_id,
        kind="fixed",
        tiers=[{"members": 2, "price_cents": MAX_PRICE_CENTS}],
        max_size=2,
        per_user_limit=50,
    )
    created = client.post("/api/v1/campaigns", json=body, headers=staff)
    assert created.status_code == 201, created.text
    (shopper,) = make_shoppers(db_session, 1)
    opened = client.post(
        f"/api/v1/campaigns/{created.json()['id']}/groups",
        json={"qty": 50},
        headers={**auth(settings, shopper), "Idempotency-Key": "dearest-tier-1"},
    )
    assert opened.status_code == 201, opened.text
    order = client.get(
        f"/api/v1/orders/{opened.json()['order_id']}", headers=auth(settings, shopper)
    )
    assert order.json()["total_cents"] == 50 * MAX_PRICE_CENTS > 2**31


def test_a_tier_past_the_bound_is_refused_without_http(db_session: Session) -> None:
    """The domain rule, for callers that build a CampaignSpec themselves (CLI, demo)."""
    shop = make_shop(db_session)
    spec = fixed_spec(shop.sku_id, members=2, price_cents=MAX_PRICE_CENTS + 1)
    with pytest.raises(InvalidCampaignError):
        services.create_campaign(
            db_session, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=spec
        )
    spec = fixed_spec(shop.sku_id, members=2, price_cents=900, leader_price_cents=2**31)
    with pytest.raises(InvalidCampaignError):
        services.create_campaign(
            db_session, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=spec
        )
    assert _campaigns_of(db_session, shop.sku_id) == 0


def _station(session: Session, station_id: str) -> None:
    create_station(session, id=station_id, name=station_id, address="1 Main St", lat=0, lon=0)


def test_unknown_station_ids_are_named_and_nothing_is_written(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    _station(db_session, "st-lobby-a")
    body = _body(shop.sku_id, station_ids=["st-lobby-a", "st-nowhere", "st-also-missing"])
    response = client.post("/api/v1/campaigns", json=body, headers=staff)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "UNKNOWN_STATION"
    assert problem["unknown_station_ids"] == ["st-also-missing", "st-nowhere"]
    assert "st-nowhere" in problem["detail"]
    assert _campaigns_of(db_session, shop.sku_id) == 0


def test_known_station_ids_are_kept_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    _station(db_session, "st-lobby-b")
    _station(db_session, "st-lobby-c")
    body = _body(shop.sku_id, station_ids=["st-lobby-c", "st-lobby-b", "st-lobby-c"])
    response = client.post("/api/v1/campaigns", json=body, headers=staff)
    assert response.status_code == 201, response.text
    assert response.json()["station_ids"] == ["st-lobby-c", "st-lobby-b"]


@pytest.mark.parametrize("station_ids", [["x" * 37], ["st"] * 101])
def test_station_lists_past_their_bounds_are_refused(
    client: TestClient, db_session: Session, settings: Settings, station_ids: list[str]
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    response = client.post(
        "/api/v1/campaigns", json=_body(shop.sku_id, station_ids=station_ids), headers=staff
    )
    assert response.status_code == 422, response.text
    assert _campaigns_of(db_session, shop.sku_id) == 0


def test_a_join_with_an_overlong_station_id_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    created = client.post("/api/v1/campaigns", json=_body(shop.sku_id), headers=staff)
    assert created.status_code == 201, created.text
    (shopper,) = make_shoppers(db_session, 1)
    response = client.post(
        f"/api/v1/campaigns/{created.json()['id']}/groups",
        json={"qty": 1, "station_id": "x" * 50},
        headers={**auth(settings, shopper), "Idempotency-Key": "long-station-1"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "INVALID_INPUT"
