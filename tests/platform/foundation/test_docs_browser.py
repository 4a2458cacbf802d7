"""The API docs page in headless Chromium: Swagger UI renders the API from assets the app
serves itself, and the browser asks no other origin for anything (no CDN)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.support import watch_csp
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve


@pytest.mark.browser
def test_swagger_ui_renders_from_this_origin_only(engine: Engine) -> None:
    app = create_app(make_settings(), engine=engine)
    with serve(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page: Page = browser.new_page(viewport={"width": 390, "height": 844})
            refused = watch_csp(page)
            origins: set[str] = set()
            page.on("request", lambda r: origins.add(urlsplit(r.url)._replace(path="").geturl()))
            page.goto(base + "/api/v1/docs")
            title = page.locator(".swagger-ui .info .title")
            expect(title).to_contain_text("OAS 3.1", timeout=60_000)  # a 1.5 MB bundle, loaded box
            expect(page.locator(".opblock-summary-path").first).to_be_visible()
            assert page.locator(".opblock").count() > 50
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    own = urlsplit(base)._replace(path="").geturl()
    assert {urlsplit(o)._replace(query="", fragment="").geturl() for o in origins} == {own}
    assert refused == [], refused
