"""The reports dashboard on a phone in headless Chromium: signed in by hand, read in Chinese
and English, compared campaigns; axe-core, CSP, weight, tap targets and no sideways scroll."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.console.test_reports import seed
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.accounts.models import User
from tuanbox.reports import rollup


@pytest.mark.browser
def test_reading_the_dashboard_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    site = console_site
    with site.factory() as s:
        world = site.world
        # The seed reads users through the session: bring the detached ones back in.
        for name in ("staff", "other_staff", "shopper"):
            setattr(world, name, s.merge(getattr(world, name)))
        ids = seed(s, world)
        s.commit()
    with site.factory() as s:
        assert rollup.refresh(s, ZoneInfo("Asia/Shanghai"), overlap_s=0).orders_read == 0
        assert isinstance(s.get(User, world.staff.id), User)
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        check_page(page, weigher, refused, site.base + "/console/reports")
        assert page.locator("h1").inner_text() == "报表"
        kpis = page.locator("dl.kpis").first.inner_text()
        assert "¥60.99" in kpis and "客单价" in kpis and "成团率" in kpis
        assert page.locator("svg.chart[role=img]").count() == 2  # GMV by day, funnel
        # The chart fits the phone's width.
        box = page.locator("svg.chart").first.bounding_box()
        assert box is not None and box["width"] <= 390
        page.click("form.lang button")
        page.wait_for_url(site.base + "/console/reports")
        assert page.locator("h1").inner_text() == "Reports"
        page.select_option("#cmp-a", ids["peaches"])
        page.select_option("#cmp-b", ids["sale"])
        page.click("form.range:has(#cmp-a) button[type=submit]")
        page.wait_for_url("**/console/reports?*a=*")
        check_page(page, weigher, refused, page.url)
        assert page.locator("table.compare tbody tr").count() == 2
        assert page.locator("svg.chart[role=img]").count() == 3
        assert "Their secret campaign" not in page.content()
