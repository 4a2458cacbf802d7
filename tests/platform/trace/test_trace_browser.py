"""The consumer trace page in headless Chromium: WebCrypto folds the proofs, eth_call checks
the root on our own anvil; a tampered proof is caught in the browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from tests.conftest import make_settings
from tests.platform.factories import make_merchant, make_product
from tests.platform.shop.test_pages_browser import AXE, AXE_RUN, SMALL_TARGETS
from tests.support import watch_csp
from tests.traceability import factories as tf
from traceability.settings import TraceSettings
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.catalog.models import Lot
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings
from tuanbox.trace.services import record_event, run_anchoring


@contextmanager
def live_api(settings: Settings, trace: TraceSettings) -> Iterator[str]:
    from tuanbox.trace.views import router

    engine = make_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    app.state.trace_settings = trace
    app.include_router(router)
    try:
        with serve(app) as base:
            yield base
    finally:
        engine.dispose()


@pytest.mark.browser
def test_phone_verifies_proofs_and_root_in_the_browser(
    fresh_database: Callable[[], str], trace_settings: TraceSettings
) -> None:
    settings = make_settings(database_url=fresh_database())
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        merchant = make_merchant(session, name="Fenghua Honey Peach Cooperative")
        product = make_product(session, merchant, gtin=tf.GTIN)
        session.add(Lot(product_id=product.id, gtin=tf.GTIN, lot_code=tf.LOT))
        session.flush()
        for event in tf.journey_events():
            record_event(session, event, merchant_id=merchant.id)
    run_anchoring(sessions, trace_settings.model_copy(update={"window_seconds": 0.001}))
    engine.dispose()
    path = f"/01/{tf.GTIN}/10/{tf.LOT}"

    with live_api(settings, trace_settings) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page: Page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            refused = watch_csp(page)
            page.add_init_script(path=str(AXE))  # through DevTools: the CSP does not apply
            page.goto(base + path)
            # Styled by its nonce'd <style>: the header has its colour, not the default.
            assert page.evaluate("getComputedStyle(document.querySelector('header')).color") == (
                "rgb(255, 255, 255)"
            )
            expect(page.locator("header h1")).to_contain_text("Peaches")
            expect(page.locator("ol.timeline li")).to_have_count(5)
            page.get_by_role("button", name="验证 Verify now").click()
            checks = page.locator("#checks li")
            expect(checks.filter(has_text="anchored on chain 31337")).to_have_count(1)
            expect(checks.filter(has_text="proof folds to root")).to_have_count(5)
            expect(page.locator("#checks li.bad")).to_have_count(0)
            assert refused == [], refused  # the RPC origin is allowed for this page only
            # The page a shop order links to meets the shop's bar: axe, 44 px, phone width.
            assert page.evaluate(AXE_RUN) == []
            assert page.evaluate(SMALL_TARGETS) == []
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            # The same page with one proof sibling flipped: the browser must say so.
            def tamper(route: Route) -> None:
                response = route.fetch()
                body = response.text()
                marker = '"siblings": ["0x'
                at = body.index(marker) + len(marker)
                flipped = "0" if body[at] != "0" else "1"
                route.fulfill(response=response, body=body[:at] + flipped + body[at + 1 :])

            tampered = browser.new_page()
            # The resolver's 307 leads to the trace page; Chromium's interception does not see
            # a redirect's target, so the tampered copy is that page, opened directly.
            trace_page = base + f"/trace/lot/{tf.GTIN}/{tf.LOT}"
            assert page.url == trace_page
            tampered.route(trace_page, tamper)
            tampered.goto(trace_page)
            tampered.get_by_role("button", name="验证 Verify now").click()
            bad = tampered.locator("#checks li.bad")
            expect(bad).to_have_count(1)
            expect(bad).to_contain_text("event 1: wrong proof")
        finally:
            browser.close()
