""" "Remind me" in headless Chromium: the cached sale page turns into this shopper's state by
its small fetch, passes axe and the CSP, and the reminder is cancelled by hand."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Site
from tests.platform.shop.test_pages_browser import check_page, phone, shop_site  # noqa: F401
from tuanbox.flashsale.models import Reminder
from tuanbox.shop import session as shop_session


@pytest.mark.browser
def test_remind_me_on_a_phone(shop_site: Site) -> None:  # noqa: F811
    base, settings, catalogue, factory = shop_site
    sale = catalogue.upcoming_sale_id
    shopper = catalogue.shoppers[1]
    with phone(base) as (page, refused, weigher):
        page.context.add_cookies([{"name": shop_session.ACCESS, "url": base,
                                   "value": token_for(settings, shopper)}])  # fmt: skip
        page.goto(f"{base}/f/{sale}")
        ask = page.get_by_role("button", name="开抢提醒我")
        cancel = page.get_by_role("button", name="取消提醒")
        expect(ask).to_be_visible()
        expect(cancel).to_have_count(0)
        ask.click()
        expect(page).to_have_url(f"{base}/f/{sale}?r=on")
        expect(page.get_by_text("开抢前 10 分钟会提醒你。")).to_be_visible()
        expect(cancel).to_be_visible()  # from remind.json: the fragment is everyone's
        expect(ask).to_be_hidden()
        check_page(page, weigher, refused, f"{base}/f/{sale}")  # the page, state and all
        expect(cancel).to_be_visible()
        with factory() as db:
            assert list(db.scalars(select(Reminder.user_id).where(Reminder.sale_id == sale))) == [
                shopper
            ]
        cancel.click()
        expect(page).to_have_url(f"{base}/f/{sale}?r=off")
        expect(page.get_by_text("已取消提醒。")).to_be_visible()
        expect(ask).to_be_visible()
        assert refused == [], refused
