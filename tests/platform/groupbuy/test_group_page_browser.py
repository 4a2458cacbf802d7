"""The shopper's group page on a phone screen, in real headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, pay, tiered_spec
from tests.support import watch_csp
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory
from tuanbox.groupbuy.services import create_campaign, join_group, open_group

PHONE = {"width": 390, "height": 844}
SELECTED_WHOLLY = "el => el.selectionStart === 0 && el.selectionEnd === el.value.length"
INSIDE_BODY_PADDING = """() => {
  const body = document.body.getBoundingClientRect();
  const right = body.right - parseFloat(getComputedStyle(document.body).paddingRight);
  return [...document.body.querySelectorAll("*")]
    .every((el) => el.getBoundingClientRect().right <= right + 0.5);
}"""


@pytest.mark.browser
def test_group_page_fits_a_phone_and_counts_down(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], tmp_path: Path
) -> None:
    settings = make_settings(database_url=fresh_database())
    engine = engines(settings.database_url)
    with make_session_factory(engine, settings)() as session:  # paying runs hooks that need them
        shop = make_shop(session)
        leader, member = make_shoppers(session, 2)
        campaign = create_campaign(session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
                                   spec=tiered_spec(shop.sku_id))  # fmt: skip
        opened = open_group(session, campaign_id=campaign.id, user_id=leader, now=utcnow())
        group_id = opened.group.id
        join_group(session, group_id=group_id, user_id=member, now=utcnow())
        pay(session, settings, opened.order_id)
        session.commit()

    with serve(create_app(settings, engine=engine)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
            refused = watch_csp(page)
            page.goto(f"{base}/g/{group_id}")
            bar = page.get_by_role("progressbar")
            expect(bar).to_be_visible()
            assert bar.get_attribute("aria-valuenow") not in (None, "0")
            expect(page.get_by_text("1 paid · 2 joined")).to_be_visible()
            expect(page.get_by_text("more needed")).to_be_visible()
            # Nothing wider than the phone (a mobile browser zooms out to fit wider content, so
            # innerWidth would grow with it): no sideways scrolling.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
            assert page.evaluate(INSIDE_BODY_PADDING), "an element spills past the page margin"
            left = page.locator("#left")
            first = left.inner_text()
            expect(left).not_to_have_text(first, timeout=5000)  # the countdown ticks
            share = page.get_by_label("share link")
            expect(share).to_have_value(f"{settings.public_base_url}/g/{group_id}")
            share.click()  # selects the whole link (the script, not an inline handler)
            assert page.evaluate(SELECTED_WHOLLY, share.element_handle())
            box = page.locator("[role=progressbar] rect").bounding_box()
            assert box and box["width"] > 0  # the bar is drawn (no inline style to block)
            assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # styled
            assert refused == [], refused
            page.screenshot(path=str(tmp_path / "group-phone.png"), full_page=True)
        finally:
            browser.close()
