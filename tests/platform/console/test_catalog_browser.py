"""The catalog and campaign pages on a phone in headless Chromium: sign in by hand, create a
tiered campaign through the form (a mistake first, explained in words), see it on the
shopper home page; every page passes axe-core, the CSP, the weight and tap-target checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Product, Sku
from tuanbox.catalog.services import add_lot
from tuanbox.console.forms import local_input
from tuanbox.db.base import utcnow


@pytest.mark.browser
def test_create_a_tiered_campaign_on_a_phone_and_see_it_on_the_shop(
    console_site: ConsoleSite,  # noqa: F811
) -> None:
    site = console_site
    world = site.world
    with site.factory() as session:
        sku = session.get(Sku, world.sku_id)
        product = session.get(Product, world.product_id)
        assert sku is not None and product is not None
        sku_label = f"{product.name} · {sku.name}"
        lot = add_lot(session, Actor(world.staff.id, world.staff.role), product.id, lot_code="B7")
        lot_path = f"/console/lots/{lot.gtin}/{lot.lot_code}"
        session.commit()
    tz = site.settings.station_timezone
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        for path in ("/console/products", f"/console/products/{world.product_id}", lot_path,
                     "/console/campaigns", "/console/credentials",
                     "/console/campaigns/new?kind=flash"):  # fmt: skip
            check_page(page, weigher, refused, site.base + path)
        check_page(page, weigher, refused, site.base + "/console/campaigns/new?kind=tiered")

        page.fill("#f-title", "Blueberries for Block 7")
        page.select_option("#f-sku_id", value=world.sku_id)
        assert sku_label in page.locator("#f-sku_id option:checked").inner_text()
        page.fill("#f-starts_at", local_input(utcnow(), tz))
        page.fill("#f-ends_at", local_input(utcnow() + timedelta(days=2), tz))
        page.fill("#f-tier-m-1", "3")
        page.fill("#f-tier-p-1", "9.90")
        page.fill("#f-tier-m-2", "5")
        page.fill("#f-tier-p-2", "10.50")  # dearer for a bigger group: refused, in words
        page.click("form[action='/console/campaigns'] button[type=submit]")
        problems = page.locator("#problems")
        expect(problems).to_contain_text("第 2 档")
        expect(problems).to_contain_text("人数越多，单价不能更高")
        assert page.input_value("#f-title") == "Blueberries for Block 7"  # kept as typed
        page.fill("#f-tier-p-2", "8.50")
        page.click("form[action='/console/campaigns'] button[type=submit]")
        page.wait_for_url(site.base + "/console/campaigns?done=created")
        expect(page.locator(".campaign-list")).to_contain_text("Blueberries for Block 7")
        expect(page.locator(".campaign-list")).to_contain_text("进行中")

        page.goto(site.base + "/")
        expect(page.locator("main")).to_contain_text("Blueberries for Block 7")
