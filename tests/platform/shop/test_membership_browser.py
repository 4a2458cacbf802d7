"""The membership page in headless Chromium on a phone: it passes axe, the CSP, the weight and
tap-target checks; joining goes through the hosted payment page and back, the membership is
then shown with its end, and renewing is offered. The invites page passes the same checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Catalogue, make_catalogue
from tests.platform.shop.test_pages_browser import check_page, phone
from tests.support import wait_until
from tuanbox.api.app import create_app
from tuanbox.api.live import free_port, serve
from tuanbox.db.engine import make_session_factory
from tuanbox.membership import services as membership
from tuanbox.membership.models import MembershipEntry
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session


@pytest.fixture
def member_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[tuple[str, Settings, Catalogue, Any]]:
    """The shop on a port its settings know as the public base URL (the hosted payment page
    is on the pages' own origin)."""
    run = uuid.uuid4().hex
    port = free_port("127.0.0.1")
    settings = make_settings(
        database_url=fresh_database(),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        public_base_url=f"http://127.0.0.1:{port}",
    )
    engine = engines(settings.database_url)
    factory = make_session_factory(engine, settings)
    with factory() as session:
        catalogue = make_catalogue(session)
    with serve(create_app(settings, engine=engine), port=port) as base:
        yield base, settings, catalogue, factory


@pytest.mark.browser
def test_join_membership_on_a_phone(member_site: tuple[str, Settings, Catalogue, Any]) -> None:
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
