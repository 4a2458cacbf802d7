"""Member prices and the delivery fee on a phone, in headless Chromium: the campaign page
(member price, the fee's terms), a non-member's unpaid order and its checkout (the fee, what
members pay instead) pass axe, the CSP, the weight, tap-target and phone-width checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Catalogue, make_catalogue
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.api.app import create_app
from tuanbox.api.live import free_port, serve
from tuanbox.db.engine import make_session_factory
from tuanbox.groupbuy.models import Campaign
from tuanbox.membership import services as membership
from tuanbox.membership.pricing import DeliveryTerms, price_order
from tuanbox.orders.services import create_order
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session


@pytest.fixture
def fee_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[tuple[str, Settings, Catalogue, str]]:
    run = uuid.uuid4().hex
    port = free_port("127.0.0.1")
    settings = make_settings(
        database_url=fresh_database(),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        public_base_url=f"http://127.0.0.1:{port}",
        delivery_fee_cents=500,
        free_delivery_over_cents=9900,
    )
    engine = engines(settings.database_url)
    factory = make_session_factory(engine, settings)
    with factory() as session:
        catalogue = make_catalogue(session)
        campaign = session.get(Campaign, catalogue.campaign_id)
        assert campaign is not None
        membership.set_member_price(session, campaign.sku_id, 850, "ops")  # joins at 900
        shopper = catalogue.shoppers[1]
        priced = price_order(
            session,
            user_id=shopper,
            sku_id=campaign.sku_id,
            offer_cents=1000,
            qty=1,
            delivery=DeliveryTerms.of(settings),
        )
        order = create_order(
            session,
            user_id=shopper,
            sku_id=campaign.sku_id,
            qty=1,
            unit_price_cents=priced.unit_price_cents,
            delivery_fee_cents=priced.delivery_fee_cents,
        )
        session.commit()
        order_id = order.id
    with serve(create_app(settings, engine=engine), port=port) as base:
        yield base, settings, catalogue, order_id


@pytest.mark.browser
def test_member_price_and_fee_on_a_phone(fee_site: tuple[str, Settings, Catalogue, Any]) -> None:
    base, settings, catalogue, order_id = fee_site
    with phone(base) as (page, refused, weigher):
        check_page(page, weigher, refused, f"{base}/c/{catalogue.campaign_id}")
        expect(page.locator("[data-member-price]")).to_contain_text("¥8.50")
        expect(page.locator("[data-delivery-terms]")).to_have_text(
            "配送费 ¥5.00，满 ¥99.00 免配送费，会员免配送费"
        )
        page.context.add_cookies(
            [
                {
                    "name": shop_session.ACCESS,
                    "url": base,
                    "value": token_for(settings, catalogue.shoppers[1]),
                }
            ]
        )
        check_page(page, weigher, refused, f"{base}/orders/{order_id}")
        expect(page.locator("[data-delivery]")).to_have_text("¥5.00")
        expect(page.locator("[data-member-upsell]")).to_contain_text("会员每件仅 ¥8.50")
        expect(page.get_by_role("button", name="支付 ¥15.00")).to_be_visible()
        check_page(page, weigher, refused, f"{base}/orders/{order_id}/checkout")
        expect(page.locator("[data-payable]")).to_have_text("¥15.00")
