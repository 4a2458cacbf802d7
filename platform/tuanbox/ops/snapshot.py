"""A picture of an ops page as a real browser renders it (used by `tuanbox demo`)."""

from __future__ import annotations

from pathlib import Path

from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.settings import Settings


class SnapshotUnavailableError(RuntimeError):
    code = "SNAPSHOT_UNAVAILABLE"


def snapshot(settings: Settings, token: str, page_path: str, out: Path) -> Path:
    """Serve the API, sign in as ops with `token`, open `page_path` on a tablet-sized
    screen in headless Chromium and save a full-page PNG at `out`."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # the platform extra alone has no browser driver
        raise SnapshotUnavailableError(
            "playwright is not installed (pip install '.[test]')"
        ) from exc
    if not Path(CHROMIUM_PATH).exists():
        raise SnapshotUnavailableError(f"{CHROMIUM_PATH} is missing: tuanbox services install")
    out.parent.mkdir(parents=True, exist_ok=True)
    with serve(create_app(settings)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 1366})
            page.goto(f"{base}/ops/login?token={token}")
            page.goto(f"{base}{page_path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return out
