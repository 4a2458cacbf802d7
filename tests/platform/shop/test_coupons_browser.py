"""Checkout with a coupon in headless Chromium on a phone: the order page leads to checkout,
which passes axe, the CSP, the weight and tap-target checks; ticking a coupon and some points
lowers the amount, and paying through the hosted page takes exactly that."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Site, served_shop
from tests.platform.shop.test_pages_browser import check_page, phone
from tests.support import wait_until
from tuanbox.catalog.models import Sku
from tuanbox.coupons.services import create_template, issue_one
from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order
from tuanbox.points import services as points
from tuanbox.shop import session as shop_session


@pytest.fixture
def coupon_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[Site]:
    """The hosted payment page on the pages' own origin (the CSP's form-action 'self' follows
    the pay form's redirect there)."""
    with served_shop(fresh_database(), engines, public_host="127.0.0.1") as site:
        yield site


@pytest.mark.browser
def test_apply_a_coupon_at_checkout_and_pay_the_rest(
    coupon_site: Site,
) -> None:
    base, settings, catalogue, factory = coupon_site
    shopper = catalogue.shoppers[2]
    with factory() as db:
        sku = db.query(Sku).first()
        assert sku is not None
        sku.price_cents = 2000
        order = create_order(db, user_id=shopper, sku_id=sku.id, qty=2, unit_price_cents=2000)
        now = utcnow()
        spring = create_template(
            db,
            created_by="ops",
            name="春日满减",
            kind="amount_off",
            amount_off_cents=500,
            threshold_cents=3900,
            stackable=True,
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=7),
        )
        coupon = issue_one(db, spring.id, shopper, "browser")
        points.post(db, shopper, "gift", "earn", 300)
        db.commit()
        order_id, coupon_id = order.id, coupon.id
    with phone(base) as (page, refused, weigher):
        page.context.add_cookies(
            [{"name": shop_session.ACCESS, "url": base, "value": token_for(settings, shopper)}]
        )
        page.goto(f"{base}/orders/{order_id}")
        page.get_by_role("link", name="使用优惠券或积分").click()
        expect(page).to_have_url(f"{base}/orders/{order_id}/checkout")
        check_page(page, weigher, refused, f"{base}/orders/{order_id}/checkout")
        expect(page.get_by_text("省 ¥5.00")).to_be_visible()
        page.locator(f'input[name="coupon"][value="{coupon_id}"]').check()
        page.get_by_label("使用积分（你有 300）").fill("200")
        page.get_by_role("button", name="使用", exact=True).click()
        expect(page).to_have_url(f"{base}/orders/{order_id}/checkout?ok=applied")
        expect(page.get_by_text("优惠已使用。")).to_be_visible()
        expect(page.locator("[data-payable]")).to_have_text("¥33.00")
        check_page(page, weigher, refused, f"{base}/orders/{order_id}/checkout?ok=applied")
        page.get_by_role("button", name="支付 ¥33.00").click()
        page.get_by_role("button", name="Pay / 支付").click()
        expect(page).to_have_url(f"{base}/orders/{order_id}?ok=paid")

        def paid() -> int | None:
            with factory() as db:
                row = db.get(Order, order_id)
                return row.paid_cents if row is not None and row.paid_cents else None

        assert wait_until(paid, what="the payment") == 3300
        check_page(page, weigher, refused, f"{base}/me/coupons")
        expect(page.get_by_text("100 积分")).to_be_visible()
        expect(page.get_by_text("使用中")).to_be_visible()
        assert refused == [], refused
