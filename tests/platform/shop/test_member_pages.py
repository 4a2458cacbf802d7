"""The shop shows member prices and the delivery fee: an offer's page (cached, the same for
everyone) its member price and the fee's terms; an order and its checkout the fee charged,
the member price a member got, and to others what members would pay; both languages."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, tiered_spec, token_for
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.services import create_campaign
from tuanbox.membership import services as membership
from tuanbox.membership.models import Membership
from tuanbox.membership.pricing import DeliveryTerms, price_order
from tuanbox.orders.services import create_order
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    run = uuid.uuid4().hex
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        media_dir=str(tmp_path / "media"),
        delivery_fee_cents=500,
        free_delivery_over_cents=5000,
    )


def _order(session: Session, settings: Settings, sku_id: str, user_id: str) -> str:
    priced = price_order(
        session,
        user_id=user_id,
        sku_id=sku_id,
        offer_cents=2000,
        qty=1,
        delivery=DeliveryTerms.of(settings),
    )
    order = create_order(
        session,
        user_id=user_id,
        sku_id=sku_id,
        qty=1,
        unit_price_cents=priced.unit_price_cents,
        delivery_fee_cents=priced.delivery_fee_cents,
    )
    return order.id


def test_orders_show_the_fee_the_member_price_and_the_upsell(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=2000)
    membership.set_member_price(db_session, shop.sku_id, 1800, "ops")
    member, other = make_shoppers(db_session, 2)
    now = utcnow()
    db_session.add(
        Membership(
            user_id=member, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=9)
        )
    )
    db_session.flush()
    theirs = _order(db_session, settings, shop.sku_id, other)
    mine = _order(db_session, settings, shop.sku_id, member)
    db_session.commit()

    client.cookies.set(shop_session.ACCESS, token_for(settings, other))
    page = client.get(f"/orders/{theirs}", headers=EN).text
    assert "data-delivery>¥5.00<" in page
    assert "Members pay ¥18.00 a unit and no delivery fee." in page
    assert "Pay ¥25.00" in page
    checkout = client.get(f"/orders/{theirs}/checkout", headers=EN).text
    assert "data-payable>¥25.00<" in checkout and "data-member-upsell" in checkout
    listed = client.get("/orders", headers=EN).text
    assert "Total <strong>¥25.00</strong>" in listed  # what is paid, fee included
    zh = client.get(f"/orders/{theirs}", headers=ZH).text
    assert "会员每件仅 ¥18.00，且免配送费。" in zh and "配送费" in zh

    client.cookies.set(shop_session.ACCESS, token_for(settings, member))
    page = client.get(f"/orders/{mine}", headers=EN).text
    assert "data-delivery>Free for members<" in page
    assert "data-member-priced" in page and "data-member-upsell" not in page
    assert "Pay ¥18.00" in page


def test_offer_page_shows_the_member_price_and_delivery_terms(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=1200)
    membership.set_member_price(db_session, shop.sku_id, 850, "ops")
    campaign = create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id),  # joins at 900
    )
    db_session.commit()
    page = client.get(f"/c/{campaign.id}", headers=EN).text
    assert "data-member-price" in page and "¥8.50" in page
    assert "Delivery ¥5.00, free over ¥50.00, always free for members" in page
    zh = client.get(f"/c/{campaign.id}", headers=ZH).text
    assert "满 ¥50.00 免配送费" in zh
