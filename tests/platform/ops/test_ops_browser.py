"""The ops dashboard in headless Chromium against a live API, its own DB and a real InfluxDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from telemetry.settings import TelemetrySettings
from tests.conftest import make_settings
from tests.platform.coldchain.fx import make_site, run_scans, write_through_edge
from tests.platform.factories import STAFF_PASSWORD, make_user
from tests.support import watch_csp
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.fulfilment.alerts import open_alert
from tuanbox.settings import Settings


@contextmanager
def live_api(settings: Settings, telemetry: TelemetrySettings) -> Iterator[str]:
    engine = make_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    app.state.telemetry_settings = telemetry
    try:
        with serve(app) as base:
            yield base
    finally:
        engine.dispose()


@pytest.mark.browser
def test_ops_sees_the_locker_its_chart_and_the_alert_and_acknowledges_it(
    fresh_database: Callable[[], str],
    telemetry: TelemetrySettings,
    influx_url: str,
    tmp_path: Path,
    t0: datetime,
) -> None:
    settings = make_settings(database_url=fresh_database())
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with factory() as session:
        site = make_site(session, settings)
        write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, t0,
                           240)  # fmt: skip
        run_scans(session, telemetry, t0, range(10, 241, 10))
        ops = make_user(session, "ops")
        ops_login = ops.login
        session.commit()
        token = issue_access_token(settings, Principal(ops.id, "ops"))

    with live_api(settings, telemetry) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page: Page = browser.new_page(viewport={"width": 1024, "height": 768})  # a tablet
            refused = watch_csp(page)
            page.goto(f"{base}/ops/login?token={token}")
            expect(page).to_have_url(f"{base}/ops")
            row = page.locator(f'tr[data-locker="{site.locker_id}"]')
            expect(row).to_be_visible()
            expect(row.locator("[data-locker-alerts]")).to_have_text("1")
            expect(page.locator("#live")).to_have_class("live on")  # the SSE stream is open

            row.get_by_role("link", name=site.locker_id).click()
            chart = page.locator('img[alt="temperature of 0-1"]')
            expect(chart).to_be_visible()
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=chart.element_handle()
            )
            expect(page.locator('[data-compartment="0-1"]')).to_contain_text("chilled")

            page.get_by_role("link", name="Alerts").first.click()
            alert = page.locator("article.alert").filter(has_text="cold_chain_excursion")
            expect(alert).to_be_visible()
            expect(alert.locator("img.evidence")).to_be_visible()
            alert.get_by_role("button", name="Acknowledge").click()
            expect(alert.locator("[data-alert-status]")).to_have_text("acknowledged")

            # A new alert appears without a reload: the stream notices, the list refreshes.
            with factory() as session:
                open_alert(session, kind="sensor_fault", locker_id=site.locker_id,
                           compartment_id=None, detail="probe 2 reads -127 °C")  # fmt: skip
                session.commit()
            expect(page.locator("article.alert").filter(has_text="probe 2 reads")).to_be_visible(
                timeout=15_000
            )
            expect(page.locator("#alert-count")).to_have_text("2")

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{base}/ops/login")
            # The password form's POST still carries our Origin (Referrer-Policy same-origin,
            # not no-referrer, which would send `Origin: null`), so the /ops same-origin
            # check lets it through.
            page.get_by_label("Login").fill(ops_login or "")
            page.get_by_label("Password").fill(STAFF_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/ops")
            assert refused == [], refused
        finally:
            browser.close()
    engine.dispose()
