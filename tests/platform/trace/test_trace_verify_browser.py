"""The trace page's own verdict in headless Chromium, each failure with its own message: a real
report verifies (every record's fingerprint recomputed in the page, every proof folded, the root
read on chain, every lot commitment rebuilt); an edited event, a report that leaves a step out,
a node of another chain and a node without the root fail red; a report without its lot
commitments is amber, never green."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.conftest import make_settings
from tests.platform.factories import make_merchant, make_product
from tests.support import free_port, watch_csp
from tests.traceability import factories as tf
from tests.traceability.conftest import ANVIL_CANDIDATES
from traceability.hashing import anchor_leaf, event_hash
from traceability.settings import TraceSettings
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.catalog.models import Lot
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings
from tuanbox.trace.services import record_event, run_anchoring

PATH = f"/01/{tf.GTIN}/10/{tf.LOT}"
REPORT_TAG = '<script type="application/json" id="report">'
EVENTS = 5


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


@contextmanager
def other_node(chain_id: int) -> Iterator[str]:
    """Another anvil: a chain of its own id, where our Anchor contract was never deployed."""
    binary = next(p for p in ANVIL_CANDIDATES if p.exists())
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--chain-id", str(chain_id), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                requests.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2
                )
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"second anvil did not start on port {port}")
                time.sleep(0.05)  # polling a starting process, bounded by the deadline above
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def anchored_lot(database_url: str, trace: TraceSettings) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        merchant = make_merchant(session, name="Fenghua Honey Peach Cooperative")
        product = make_product(session, merchant, gtin=tf.GTIN)
        session.add(Lot(product_id=product.id, gtin=tf.GTIN, lot_code=tf.LOT))
        session.flush()
        for event in tf.journey_events():
            record_event(session, event, merchant_id=merchant.id)
    run_anchoring(sessions, trace.model_copy(update={"window_seconds": 0.001}))
    engine.dispose()


def edit_report(edit: Callable[[str], str]) -> Callable[[Route], None]:
    """A route handler that edits the report JSON embedded in the trace page's HTML."""

    def handle(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=edit(response.text()))

    return handle


def edit_json(edit: Callable[[dict[str, Any]], None]) -> Callable[[Route], None]:
    """A route handler that edits the parsed report embedded in the trace page."""

    def rewrite(body: str) -> str:
        head, rest = body.split(REPORT_TAG, 1)
        data, tail = rest.split("</script>", 1)
        report = json.loads(data)
        edit(report)
        text = json.dumps(report, ensure_ascii=False).replace("<", "\\u003c")
        return head + REPORT_TAG + text + "</script>" + tail

    return edit_report(rewrite)


def page_url(base: str) -> str:
    """Where the resolver sends a browser for the lot (a route does not see a redirect's
    target, so a test that edits the page goes there directly)."""
    reply = requests.get(
        base + PATH, headers={"Accept": "text/html"}, allow_redirects=False, timeout=10
    )
    return base + reply.headers["Location"] if reply.is_redirect else base + PATH


def verify(browser: Browser, url: str, route: Callable[[Route], None] | None = None) -> Page:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    refused = watch_csp(page)
    if route is not None:
        url = page_url(url.split("/01/")[0])
        page.route(url, route)
    page.goto(url)
    page.get_by_role("button", name="验证 Verify now").click()
    expect(page.locator("#verdict")).to_be_visible()
    assert refused == [], refused  # the RPC origin is allowed for this page only
    return page


def checks(page: Page, kind: str, state: str) -> Any:
    return page.locator(f"#checks li.{state}[data-check={kind}]")


@pytest.mark.browser
def test_page_verifies_a_real_report_and_rejects_each_kind_of_bad_one(
    fresh_database: Callable[[], str], trace_settings: TraceSettings
) -> None:
    settings = make_settings(database_url=fresh_database())
    anchored_lot(settings.database_url, trace_settings)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            public = trace_settings.model_copy(update={"public_rpc_url": trace_settings.rpc_url})
            with live_api(settings, public) as base:
                # A real report: every record recomputed, every proof folded, the root on chain.
                page = verify(browser, base + PATH)
                block = page.evaluate(
                    "JSON.parse(document.getElementById('report').textContent)"
                    ".anchors[0].block_number"
                )
                assert isinstance(block, int) and block > 0
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS)
                expect(checks(page, "fingerprint", "ok").first).to_contain_text(
                    "this step's record is unchanged (its fingerprint matches)"
                )
                expect(checks(page, "fingerprint", "ok").first).to_contain_text("记录未被改动")
                sealed = checks(page, "sealed", "ok")
                expect(sealed).to_have_count(EVENTS)
                expect(sealed.filter(has_text=f"sealed on chain at block {block}")).to_have_count(
                    EVENTS
                )
                expect(checks(page, "chain", "ok")).to_contain_text("anchored on chain 31337")
                complete = checks(page, "complete", "ok")
                expect(complete).to_have_count(1)
                expect(complete).to_contain_text(
                    f"the chain records {EVENTS} steps for this lot in this batch"
                )
                expect(page.locator("#checks li.bad")).to_have_count(0)
                expect(page.locator("#checks li.wait")).to_have_count(0)
                expect(page.locator("#verdict.ok")).to_contain_text("everything checks out")
                # Styled red/green by the page's nonce'd stylesheet.
                assert page.evaluate(
                    "getComputedStyle(document.getElementById('verdict')).backgroundColor"
                ) == ("rgb(220, 239, 220)")

                # One event's field edited in the served report: its fingerprint no longer
                # matches; nothing else is blamed.
                def more_peaches(body: str) -> str:
                    assert body.count('"quantity": 120.5') == 1
                    return body.replace('"quantity": 120.5', '"quantity": 150.5')

                page = verify(browser, base + PATH, edit_report(more_peaches))
                bad = page.locator("#checks li.bad")
                expect(bad).to_have_count(1)
                expect(bad).to_have_attribute("data-check", "fingerprint")
                expect(bad).to_contain_text("event 1: tampered")
                expect(bad).to_contain_text("记录被改动过")
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS - 1)
                expect(page.locator("#verdict.bad")).to_contain_text("verification failed")
                assert page.evaluate(
                    "getComputedStyle(document.getElementById('verdict')).backgroundColor"
                ) == ("rgb(253, 224, 220)")

                # A forger who also rewrites the event's hash and leaf: the fingerprint now
                # matches, but the batch sealed on chain holds the original leaf.
                def forged(body: str) -> str:
                    head, rest = body.split(REPORT_TAG, 1)
                    data, tail = rest.split("</script>", 1)
                    report = json.loads(data)
                    first = report["events"][0]
                    first["event"]["quantityList"][0]["quantity"] = 150.5
                    first["event_hash"] = event_hash(first["event"])
                    first["leaf"] = anchor_leaf(first["event"]).decode("utf-8")
                    text = json.dumps(report, ensure_ascii=False).replace("<", "\\u003c")
                    return head + REPORT_TAG + text + "</script>" + tail

                page = verify(browser, base + PATH, edit_report(forged))
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS)
                bad = page.locator("#checks li.bad")
                expect(bad).to_have_count(1)
                expect(bad).to_have_attribute("data-check", "sealed")
                expect(bad).to_contain_text("event 1: wrong proof — it is not part of the batch")
                expect(page.locator("#verdict.bad")).to_contain_text("verification failed")

                # One step left out of the served report: every step it shows checks out, but
                # the lot's list sealed on chain counts one more.
                def drop_one(report: dict[str, Any]) -> None:
                    assert len(report["events"]) == EVENTS and len(report["lot_commitments"]) == 1
                    del report["events"][2]

                page = verify(browser, base + PATH, edit_json(drop_one))
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS - 1)
                expect(checks(page, "sealed", "bad")).to_have_count(0)
                bad = page.locator("#checks li.bad")
                expect(bad).to_have_count(1)
                expect(bad).to_have_attribute("data-check", "complete")
                expect(bad).to_contain_text(
                    f"incomplete: the chain records {EVENTS} steps for this lot, "
                    f"the report shows {EVENTS - 1}"
                )
                expect(bad).to_contain_text(f"不完整：链上记录此批次有 {EVENTS} 个环节")
                expect(page.locator("#verdict.bad")).to_contain_text("verification failed")

                # The forger also rewrites the lot's list to the steps shown: it no longer folds
                # to the root sealed on chain.
                def recount(report: dict[str, Any]) -> None:
                    del report["events"][2]
                    report["lot_commitments"][0]["count"] = EVENTS - 1

                page = verify(browser, base + PATH, edit_json(recount))
                bad = page.locator("#checks li.bad")
                expect(bad).to_have_count(1)
                expect(bad).to_contain_text("wrong completeness proof")
                expect(page.locator("#verdict.bad")).to_be_visible()

                # The list removed from the report: indistinguishable from a window cut before
                # completeness commitments, so amber with what could not be checked, never green.
                def strip(report: dict[str, Any]) -> None:
                    assert report["lot_commitments"]
                    del report["lot_commitments"]

                page = verify(browser, base + PATH, edit_json(strip))
                unchecked = checks(page, "complete", "wait")
                expect(unchecked).to_have_count(1)
                expect(unchecked).to_contain_text(
                    "completeness not checkable for this older record"
                )
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS)
                expect(page.locator("#checks li.bad")).to_have_count(0)
                expect(page.locator("#verdict.ok")).to_have_count(0)
                expect(page.locator("#verdict.wait")).to_contain_text(
                    "some parts could not be checked here"
                )

                # Hash version 1 (anchored before GS1 conformance) is not recomputed here: never
                # green, and the verdict says what was left to `tuanbox trace verify`.
                def older(body: str) -> str:
                    assert body.count('"hash_version": 2') == EVENTS
                    return body.replace('"hash_version": 2', '"hash_version": 1', 1)

                page = verify(browser, base + PATH, edit_report(older))
                unchecked = checks(page, "fingerprint", "wait")
                expect(unchecked).to_have_count(1)
                expect(unchecked).to_contain_text("event 1: older record format (hash version 1)")
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS - 1)
                expect(page.locator("#checks li.bad")).to_have_count(0)
                expect(page.locator("#verdict.wait")).to_contain_text(
                    "some parts could not be checked here"
                )

            # The RPC answers for another chain: the report's chain id is not the node's.
            with (
                other_node(4242) as url,
                live_api(
                    settings, trace_settings.model_copy(update={"public_rpc_url": url})
                ) as base,
            ):
                page = verify(browser, base + PATH)
                wrong = checks(page, "chain", "bad")
                expect(wrong).to_have_count(1)
                expect(wrong).to_contain_text(
                    "wrong chain — the node serves chain 4242, the report names chain 31337"
                )
                expect(checks(page, "fingerprint", "ok")).to_have_count(EVENTS)
                expect(checks(page, "sealed", "bad")).to_have_count(EVENTS)
                expect(page.locator("#verdict.bad")).to_contain_text("verification failed")

            # Same chain id, but a node where the root was never recorded.
            with (
                other_node(31337) as url,
                live_api(
                    settings, trace_settings.model_copy(update={"public_rpc_url": url})
                ) as base,
            ):
                page = verify(browser, base + PATH)
                missing = checks(page, "chain", "bad")
                expect(missing).to_have_count(1)
                expect(missing).to_contain_text("not found on chain 31337")
                expect(missing).to_contain_text("链上查不到该批次")
                expect(checks(page, "sealed", "bad").first).to_contain_text(
                    "could not be confirmed on chain"
                )
                expect(page.locator("#verdict.bad")).to_be_visible()
        finally:
            browser.close()
