"""The recommendation blocks on a phone in headless Chromium: "猜你喜欢" on the home page for a
signed-in shopper and "一起买的还有" on a campaign page, passing axe, the CSP, weight and tap
targets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.recommend.catalogue import RecShop, make_rec_shop
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.db.engine import make_session_factory
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session
from tuanbox.shop.home import STATION_COOKIE


@pytest.fixture
def rec_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[tuple[str, Settings, RecShop]]:
    run = uuid.uuid4().hex
    settings = make_settings(
        database_url=fresh_database(),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
    )
    engine = engines(settings.database_url)
    with make_session_factory(engine, settings)() as session:
        shop = make_rec_shop(session)
    with serve(create_app(settings, engine=engine)) as base:
        yield base, settings, shop


@pytest.mark.browser
def test_recommendations_on_a_phone(rec_site: tuple[str, Settings, RecShop]) -> None:
    base, settings, shop = rec_site
    with phone(base) as (page, refused, weigher):
        page.context.add_cookies([
            {"name": STATION_COOKIE, "url": base, "value": shop.station},
            {"name": shop_session.ACCESS, "url": base, "value": token_for(settings, shop.buyer)},
        ])  # fmt: skip
        check_page(page, weigher, refused, base + "/")
        mine = page.locator("#for-you")
        expect(mine.get_by_role("heading", name="猜你喜欢")).to_be_visible()
        expect(mine.locator(f'a[href="/c/{shop.together}"]')).to_be_visible()
        expect(mine.locator(f'a[href="/c/{shop.main}"]')).to_have_count(0)
        box: Any = mine.bounding_box()
        assert box is not None and box["width"] <= 390

        check_page(page, weigher, refused, f"{base}/c/{shop.main}")
        together = page.locator("#together")
        expect(together.get_by_role("heading", name="一起买的还有")).to_be_visible()
        expect(together.locator(f'a[href="/c/{shop.together}"]')).to_be_visible()
        expect(together.locator(f'a[href="/c/{shop.ended}"]')).to_have_count(0)
        together.locator(f'a[href="/c/{shop.together}"]').click()
        expect(page).to_have_url(f"{base}/c/{shop.together}")
        assert refused == [], refused
