"""The console's orders on a phone in headless Chromium: the day's orders, filtered and
exported as CSV (parsed back), with axe-core, CSP, weight and tap targets checked."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.merchant_orders.fx import put_order
from tests.platform.shop.test_pages_browser import check_page, phone
from tuanbox.catalog.models import Merchant
from tuanbox.db.base import utcnow


@pytest.mark.browser
def test_export_the_days_orders_on_a_phone(console_site: ConsoleSite) -> None:  # noqa: F811
    site = console_site
    now = utcnow()
    today = now.astimezone(ZoneInfo(site.settings.station_timezone)).date().isoformat()
    with site.factory() as session:
        merchant = session.get(Merchant, site.world.merchant_id)
        other = session.get(Merchant, site.world.other_merchant_id)
        assert merchant is not None and other is not None
        todays = [
            put_order(session, merchant, status=s, at=now - timedelta(minutes=i))
            for i, s in enumerate(("confirmed", "ready_for_pickup", "pending_payment"))
        ]
        put_order(session, merchant, status="completed", at=now - timedelta(days=2))
        put_order(session, other, status="confirmed", at=now)
        session.commit()
        wanted = sorted(o.id for o in todays)
    with phone(site.base) as (page, refused, weigher):
        sign_in_page(page, site)
        check_page(page, weigher, refused, site.base + "/console/orders")
        assert page.locator(".order-tabs a").count() == 8
        page.fill("#f-from", today)
        page.fill("#f-to", today)
        page.click("form.order-filters button[type=submit]")
        page.wait_for_url(lambda url: f"from={today}" in url and f"to={today}" in url)
        assert page.locator("tbody tr").count() == 3
        check_page(page, weigher, refused, page.url)
        with page.expect_download() as info:
            page.click("#export-csv")
        body = Path(info.value.path()).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert sorted(r["order_id"] for r in rows) == wanted
        assert {r["tab"] for r in rows} == {"待发货", "待自提", "待付款"}
        assert all(r["created_at"].startswith(today) for r in rows)
