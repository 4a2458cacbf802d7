"""Issue 14's "Done means" in one run on a phone in headless Chromium: a merchant signs in,
creates a tiered campaign, sees it on the shopper home page; a shopper's order is placed and
paid; the merchant exports the day's orders (the CSV read back) and reads the dashboard with
that order counted (after the rollup task ran)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines, pay  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.console.forms import local_input
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.models import Campaign
from tuanbox.groupbuy.services import open_group
from tuanbox.orders.models import Order
from tuanbox.reports import tasks as report_tasks
from tuanbox.worker.app import create_celery

TITLE = "Blueberries for Block 7"


@pytest.mark.browser
def test_a_day_of_business_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    site = console_site
    world = site.world
    tz = site.settings.station_timezone
    today = utcnow().astimezone(ZoneInfo(tz)).date().isoformat()
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        # A tiered campaign, through the form.
        check_page(page, weigher, refused, site.base + "/console/campaigns/new?kind=tiered")
        page.fill("#f-title", TITLE)
        page.select_option("#f-sku_id", value=world.sku_id)
        page.fill("#f-starts_at", local_input(utcnow() - timedelta(minutes=1), tz))
        page.fill("#f-ends_at", local_input(utcnow() + timedelta(days=2), tz))
        page.fill("#f-tier-m-1", "3")
        page.fill("#f-tier-p-1", "9.90")
        page.fill("#f-tier-m-2", "5")
        page.fill("#f-tier-p-2", "8.50")
        page.click("form[action='/console/campaigns'] button[type=submit]")
        page.wait_for_url(site.base + "/console/campaigns?done=created")
        expect(page.locator(".campaign-list")).to_contain_text(TITLE)

        # Shoppers see it on the home page.
        page.goto(site.base + "/")
        expect(page.locator("main")).to_contain_text(TITLE)

        # A shopper opens a group on it and pays.
        with site.factory() as s:
            campaign_id = s.scalars(
                select(Campaign.id).where(
                    Campaign.merchant_id == world.merchant_id, Campaign.title == TITLE
                )
            ).one()
            joined = open_group(s, campaign_id=campaign_id, user_id=world.shopper.id, now=utcnow())
            s.commit()
            pay(s, site.settings, joined.order_id)
            s.commit()
            order = s.get(Order, joined.order_id)
            assert order is not None and order.status == "paid" and order.paid_cents > 0
            paid = f"¥{order.paid_cents / 100:.2f}"
            order_id = order.id

        # The day's orders, exported and read back.
        page.goto(site.base + f"/console/orders?from={today}&to={today}")
        check_page(page, weigher, refused, page.url)
        expect(page.locator("tbody")).to_contain_text(order_id[:8])
        with page.expect_download() as info:
            page.click("#export-csv")
        body = Path(info.value.path()).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert [r["order_id"] for r in rows] == [order_id]
        assert rows[0]["created_at"].startswith(today)

        # The rollup task (as Celery beat runs it), then the dashboard counts the order.
        celery = create_celery(site.settings)
        try:
            assert report_tasks.refresh_rollups.apply().get() > 0
        finally:
            celery.close()
        check_page(page, weigher, refused, site.base + "/console/reports")
        kpis = page.locator("dl.kpis").first.inner_text()
        assert paid in kpis, kpis
        expect(page.locator("main")).to_contain_text(TITLE)
