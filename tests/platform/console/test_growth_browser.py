"""Coupons on a phone in headless Chromium: a template made on the page, issued to a segment,
the issued count read back; the coupons, template and invites pages pass axe-core (no
serious or critical violations), CSP, weight, tap targets and the 390 px width."""

from __future__ import annotations

import pytest

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines, make_shoppers  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.segments import services as segments


@pytest.mark.browser
def test_make_a_template_issue_it_to_a_segment_and_see_the_count(
    console_site: ConsoleSite,  # noqa: F811
) -> None:
    site = console_site
    with site.factory() as session, session.begin():
        for user_id in make_shoppers(session, 3):
            segments.tag(session, site.world.merchant_id, user_id, "vip")
        segments.create(session, site.world.merchant_id, "老顾客", {"kind": "tag", "tag": "vip"})
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        check_page(page, weigher, refused, f"{site.base}/console/coupons")
        page.fill("#f-name", "满39减5")
        page.fill("#f-amount_off", "5")
        page.fill("#f-threshold", "39")
        page.click("form[action='/console/coupons'] button[type=submit]")
        page.wait_for_url(f"{site.base}/console/coupons/*")
        template_url = page.url
        check_page(page, weigher, refused, template_url)
        assert page.locator('[data-count="issued"]').inner_text() == "0"
        page.select_option("#f-target", "segment")
        page.select_option("#f-segment_id", label="老顾客（3 位顾客）")
        page.click("form[action$='/issue'] button[type=submit]")
        page.wait_for_url("**/console/coupons/*issued=3*")
        assert page.locator('[data-count="issued"]').inner_text() == "3"
        assert "已发放 3 张优惠券" in page.locator("#issued").inner_text()
        check_page(page, weigher, refused, f"{site.base}/console/coupons")
        assert page.locator("td[data-issued]").first.inner_text() == "3"
        check_page(page, weigher, refused, f"{site.base}/console/invites")
        assert page.locator("#f-template_id option", has_text="满39减5").count() == 1
