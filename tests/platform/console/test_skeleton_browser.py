"""The console's frame on a phone in headless Chromium: sign in by hand, the nav, the
language switch; axe-core, CSP, weight and tap targets as on the shop's pages."""

from __future__ import annotations

import pytest

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.console.render import NAV


@pytest.mark.browser
def test_sign_in_nav_and_language_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    site = console_site
    with phone(site.base) as (page, refused, weigher):
        check_page(page, weigher, refused, site.base + "/console/signin")
        sign_in_page(page, site)
        check_page(page, weigher, refused, site.base + "/console")
        assert page.locator("nav.console-nav a").count() == len(NAV)  # every module's page
        assert page.locator("nav.console-nav").inner_text().startswith("商品")
        page.click("form.lang button")
        page.wait_for_url(site.base + "/console")
        assert page.locator("nav.console-nav").inner_text().startswith("Products")
