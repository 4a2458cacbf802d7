"""The pay form's redirect to a hosted checkout on another origin, in headless Chromium.

Chromium holds the redirect that follows a form POST to the page's CSP form-action. The order
page therefore lists the enabled providers' checkout origins there; here SimPay's hosted page
is served under another host name than the shop (localhost against 127.0.0.1), as WeChat
Pay's cashier is on wx.tenpay.com in production."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Site, served_shop
from tests.platform.shop.test_pages_browser import phone
from tuanbox.catalog.models import Sku
from tuanbox.orders.services import create_order
from tuanbox.shop import session as shop_session


@pytest.fixture
def split_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[Site]:
    """The shop on 127.0.0.1, its hosted payment page (public_base_url) on localhost."""
    with served_shop(fresh_database(), engines, public_host="localhost") as site:
        assert site[0].startswith("http://127.0.0.1:")
        yield site


@pytest.mark.browser
def test_the_pay_form_reaches_a_checkout_on_another_origin(
    split_site: Site,
) -> None:
    base, settings, catalogue, factory = split_site
    shopper = catalogue.shoppers[1]
    with factory() as db:
        sku = db.query(Sku).first()
        assert sku is not None
        order = create_order(db, user_id=shopper, sku_id=sku.id, qty=1, unit_price_cents=1990)
        db.commit()
        order_id = order.id
    with phone(base) as (page, refused, _weigher):
        page.context.add_cookies(
            [{"name": shop_session.ACCESS, "url": base, "value": token_for(settings, shopper)}]
        )
        response = page.goto(f"{base}/orders/{order_id}")
        assert response is not None
        policy = response.headers["content-security-policy"]
        assert f"form-action 'self' {settings.public_base_url}" in policy, policy
        page.locator("#pay button[type=submit]").click()
        hosted = re.compile(re.escape(f"{settings.public_base_url}/pay/sim/") + ".+")
        expect(page).to_have_url(hosted, timeout=10_000)
        assert refused == [], refused
