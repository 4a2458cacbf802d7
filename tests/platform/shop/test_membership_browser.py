"""The membership page in headless Chromium on a phone: it passes axe, the CSP, the weight and
tap-target checks; joining goes through the hosted payment page and back, the membership is
then shown with its end, and renewing is offered. The invites page passes the same checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Site, served_shop
from tests.platform.shop.test_pages_browser import check_page, phone
from tests.support import wait_until
from tuanbox.membership import services as membership
from tuanbox.membership.models import MembershipEntry
from tuanbox.shop import session as shop_session


@pytest.fixture
def member_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[Site]:
    """The hosted payment page on the pages' own origin."""
    with served_shop(fresh_database(), engines, public_host="127.0.0.1") as site:
        yield site


@pytest.mark.browser
def test_join_membership_on_a_phone(member_site: Site) -> None:
    base, settings, catalogue, factory = member_site
    shopper = catalogue.shoppers[1]
    with phone(base) as (page, refused, weigher):
        page.context.add_cookies(
            [{"name": shop_session.ACCESS, "url": base, "value": token_for(settings, shopper)}]
        )
        check_page(page, weigher, refused, f"{base}/me/membership")
        expect(page.get_by_text("尚未开通会员")).to_be_visible()
        expect(page.get_by_text("免配送费", exact=True)).to_be_visible()
        page.get_by_role("button", name="¥99.00 开通会员").click()
        page.get_by_role("button", name="Pay / 支付").click()
        expect(page).to_have_url(f"{base}/me/membership?ok=paid")

        def paid() -> int | None:
            with factory() as db:
                rows = membership.ledger(db, shopper)
                return rows[0].cents if rows else None

        assert wait_until(paid, what="the membership payment") == 9900
        check_page(page, weigher, refused, f"{base}/me/membership")
        with factory() as db:
            row = membership.status(db, shopper)
            assert row is not None
            year = row.ends_at.astimezone(ZoneInfo(settings.station_timezone)).strftime("%Y-%m-%d")
        expect(page.locator("[data-member]")).to_have_text(f"会员有效期至 {year}")
        expect(page.get_by_role("button", name="¥99.00 续费")).to_be_visible()
        check_page(page, weigher, refused, f"{base}/me/invites")
        expect(page.get_by_text("本周邀请榜")).to_be_visible()
        assert refused == [], refused
    with factory() as db:
        assert [e.kind for e in db.query(MembershipEntry).all()] == ["paid"]
