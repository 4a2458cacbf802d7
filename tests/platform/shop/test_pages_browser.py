"""The shopper pages on a phone in headless Chromium: axe-core finds no serious or critical
violation, the CSP refuses nothing, each page weighs under 100 KB of HTML + CSS + JS, tap
targets are at least 44 px, focus follows the document, and sign-in, the language switch
and the station choice work by hand."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect, sync_playwright
from sqlalchemy import Engine

from tests.platform.groupbuy.factories import engines  # noqa: F401 - fixture
from tests.platform.shop.conftest import Site, served_shop
from tests.platform.shop.test_signin import last_code
from tests.support import wait_until, watch_csp
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH

PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).parents[3] / "node_modules" / "axe-core" / "axe.min.js"
MAX_PAGE_BYTES = 100 * 1024
COUNTED = {"document", "stylesheet", "script"}
# Visible controls smaller than 44 × 44 CSS px (WCAG 2.5.5).
SMALL_TARGETS = """() => {
  const controls = 'a[href], button, input:not([type=hidden]), select';
  const box = (el) => (el.type === 'radio' ? el.closest('label') : el).getBoundingClientRect();
  return [...document.querySelectorAll(controls)]
    .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; })
    .filter((el) => box(el).width < 44 || box(el).height < 44)
    .map((el) => `${el.outerHTML.slice(0, 60)} ${box(el).width}x${box(el).height}`);
}"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}"""


class Weigher:
    """Bytes of HTML, CSS and JS a page load fetched."""

    def __init__(self, page: Page) -> None:
        self.bytes = 0
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        if response.request.resource_type in COUNTED and response.status < 300:
            self.bytes += len(response.body())


@contextmanager
def phone(base: str) -> Iterator[tuple[Page, list[str], Weigher]]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                          has_touch=True, locale="zh-CN")  # fmt: skip
            # Injected through the DevTools protocol: the pages' CSP does not apply to it.
            context.add_init_script(path=str(AXE))
            page = context.new_page()
            yield page, watch_csp(page), Weigher(page)
        finally:
            browser.close()


def check_page(page: Page, weigher: Weigher, refused: list[str], url: str) -> None:
    weigher.bytes = 0
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert weigher.bytes < MAX_PAGE_BYTES, (url, weigher.bytes)
    violations = page.evaluate(AXE_RUN)
    assert violations == [], (url, violations)
    small = page.evaluate(SMALL_TARGETS)
    assert small == [], (url, small)
    # A mobile browser zooms out to fit content wider than the screen (innerWidth grows with
    # it), so the page is held to the phone's width itself.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (url, width)
    assert refused == [], (url, refused)


def rendered_fonts(page: Page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew the first `selector` element's text with: family → glyphs."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def focus_order(page: Page) -> list[Any]:
    """Tab once per control: each stop's document position and whether its focus is drawn."""
    controls = "a[href], button, input:not([type=hidden]), select"
    presses = page.evaluate(f"document.querySelectorAll('{controls}').length")
    assert presses > 5
    stops = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("""() => {
          const el = document.activeElement;
          const all = [...document.querySelectorAll('*')];
          const style = getComputedStyle(el);
          const drawn = style.outlineStyle !== 'none' && style.outlineWidth !== '0px';
          return [all.indexOf(el), drawn, el.outerHTML.slice(0, 50)];
        }"""))  # fmt: skip
    return stops


@pytest.fixture
def shop_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> Iterator[Site]:
    with served_shop(fresh_database(), engines) as site:
        yield site


@pytest.mark.browser
def test_every_shop_page_passes_axe_csp_weight_and_tap_targets(
    shop_site: Site, tmp_path: Path
) -> None:
    base, _settings, catalogue, _factory = shop_site
    with phone(base) as (page, refused, weigher):
        for path in ("/", f"/c/{catalogue.campaign_id}", f"/f/{catalogue.live_sale_id}",
                     f"/f/{catalogue.upcoming_sale_id}", "/signin", "/station",
                     "/c/00000000-0000-0000-0000-000000000000"):  # fmt: skip
            check_page(page, weigher, refused, base + path)
            shot = path.strip("/").replace("/", "-") or "home"
            page.screenshot(path=str(tmp_path / f"{shot}.png"), full_page=True)
        page.goto(base + "/")
        stops = focus_order(page)
        assert [i for i, _, _ in stops] == sorted(i for i, _, _ in stops), stops  # document order
        assert all(drawn for _, drawn, _ in stops), stops  # every stop shows its focus
        # The countdowns tick and the live stock box is refreshed from /shop/live.json.
        clock = page.locator("time[data-countdown]").first
        first = clock.inner_text()
        expect(clock).not_to_have_text(first, timeout=5000)
        assert ":" in clock.inner_text()


@pytest.mark.browser
def test_language_switch_station_choice_and_sign_in_by_hand(
    shop_site: Site,
) -> None:
    base, settings, catalogue, factory = shop_site
    with phone(base) as (page, refused, weigher):
        page.goto(base + "/")
        expect(page.get_by_role("heading", name="今日必拼")).to_be_visible()
        # CJK text is drawn with a CJK font, every glyph of it, not as empty boxes
        # (document.fonts.check() says yes to any system font name, installed or not).
        assert rendered_fonts(page, "main h1") == {"Noto Sans CJK SC": 4}
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name="Today's picks")).to_be_visible()
        check_page(page, weigher, refused, base + "/")  # the English page passes too

        page.get_by_role("link", name="Choose a station").click()
        page.get_by_text("Lobby A").click()
        page.get_by_role("button", name="Use this station").click()
        expect(page).to_have_url(base + "/")
        expect(page.get_by_text("Lobby A")).to_be_visible()
        expect(page.locator(f'a[href="/c/{catalogue.other_campaign_id}"]')).to_have_count(0)

        page.goto(f"{base}/c/{catalogue.campaign_id}")
        page.get_by_role("button", name="Join (1)").click()  # signed out: sign in first
        expect(page).to_have_url(f"{base}/signin?next=/c/{catalogue.campaign_id}")
        page.get_by_label("Phone number").fill("13800138123")
        page.get_by_role("button", name="Send code").click()

        def sent_code() -> str | None:
            # The click returns before the server has committed the code: poll for it.
            with factory() as session:
                try:
                    return last_code(session, settings, "13800138123")
                except AssertionError:
                    return None

        code = wait_until(sent_code, what="the sign-in code")
        page.get_by_label("6-digit code").fill(code)
        page.get_by_role("button", name="Sign in").last.click()
        expect(page).to_have_url(f"{base}/c/{catalogue.campaign_id}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert refused == [], refused


@pytest.mark.browser
def test_live_stock_and_long_countdowns_in_the_pages_language(
    shop_site: Site,
) -> None:
    """A sale's stock moves on the (cached) home page without a reload, and a countdown of
    days reads in the page's language (the script's day format comes from the catalogs)."""
    from tuanbox.flashsale.models import FlashSale

    base, _settings, catalogue, factory = shop_site
    with phone(base) as (page, refused, _weigher):
        page.goto(base + "/")
        stock = page.locator(f'[data-sale-stock="{catalogue.live_sale_id}"] .stock')
        expect(stock).to_have_text("剩余 7 / 7")
        with factory() as session:
            sale = session.get(FlashSale, catalogue.live_sale_id)
            assert sale is not None
            sale.remaining -= 2  # two admissions: the page is not rebuilt for stock alone
            session.commit()
        expect(stock).to_have_text("剩余 5 / 7", timeout=15_000)
        page.goto(f"{base}/c/{catalogue.campaign_id}")  # the offer ends in about a week
        ends = page.locator("p.meta time[data-countdown]").first
        expect(ends).to_have_text(re.compile(r"^\d+ 天 \d+ 小时$"))
        page.get_by_role("button", name="English").click()
        expect(ends).to_have_text(re.compile(r"^\d+d \d+h$"))
        assert refused == [], refused


def test_cjk_fonts_are_installed() -> None:
    """`tuanbox services install` puts fonts-noto-cjk beside Chromium (the pages' Chinese)."""
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    assert "Noto Sans CJK SC" in listed
