"""The shopper pages the other browser tests do not load, held to the same bar on a phone in
headless Chromium (axe-core: no serious or critical violation; no CSP refusal; 44 px
targets; the phone's width; under 100 KB): the sign-in page once the code is sent, the
development inbox, an unpaid order, the payment provider's hosted page, an order not in the
locker yet and its pickup page, a picked-up order with its review form and its pickup page,
and an order that is not the shopper's."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from edge.protocol.token import generate_keypair, private_key_to_b64
from tests.conftest import make_settings
from tests.platform.groupbuy.factories import engines, token_for  # noqa: F401 - fixture
from tests.platform.shop.conftest import Catalogue, make_catalogue
from tests.platform.shop.test_order_pages import _picked_up, in_locker
from tests.platform.shop.test_pages_browser import (
    AXE_RUN,
    PHONE,
    SMALL_TARGETS,
    Weigher,
    check_page,
    phone,
)
from tests.platform.shop.test_signin import last_code
from tests.support import free_port, wait_until, watch_csp
from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.db.engine import make_session_factory
from tuanbox.lockers.models import Compartment
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SHOPPER_PHONE = "13800138456"


@pytest.fixture
def dev_shop(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[str, Settings, Catalogue, Any]]:
    """The shop as `make run` serves it (development: /dev/inbox exists)."""
    run, port = uuid.uuid4().hex, free_port()
    settings = make_settings(
        env="development",
        public_base_url=f"http://127.0.0.1:{port}",  # the hosted page sends the shopper back
        database_url=fresh_database(),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        media_dir=str(tmp_path / "media"),
        pickup_signing_key=private_key_to_b64(generate_keypair()[0]),
    )
    engine = engines(settings.database_url)
    factory = make_session_factory(engine, settings)
    with factory() as session:
        catalogue = make_catalogue(session)
    with serve(create_app(settings, engine=engine), port=port) as base:
        yield base, settings, catalogue, factory


def check_here(page: Page, refused: list[str]) -> None:
    """check_page's bar for the page as it stands (the answer to a post, not a fresh load)."""
    page.wait_for_load_state("networkidle")
    where = page.url
    assert page.evaluate(AXE_RUN) == [], where
    assert page.evaluate(SMALL_TARGETS) == [], where
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where
    assert refused == [], (where, refused)


@pytest.mark.browser
def test_sign_in_inbox_order_payment_pickup_and_review_pages_pass_axe(
    dev_shop: tuple[str, Settings, Catalogue, Any],
) -> None:
    base, settings, catalogue, factory = dev_shop
    with factory() as session:
        parcel = _picked_up(session, settings)
        picked_order, picked_user = parcel.order.id, parcel.order.user_id
    with phone(base) as (page, refused, weigher):
        # Sign in on the page: the code step, then the development inbox that shows the code.
        page.goto(f"{base}/signin?next=/c/{catalogue.campaign_id}")
        page.get_by_label("手机号").fill(SHOPPER_PHONE)
        page.get_by_role("button", name="获取验证码").click()
        expect(page.get_by_label("6位验证码")).to_be_visible()
        check_here(page, refused)

        def sent_code() -> str | None:
            with factory() as session:
                try:
                    return last_code(session, settings, SHOPPER_PHONE)
                except AssertionError:
                    return None

        code = wait_until(sent_code, what="the sign-in code")
        inbox = page.context.new_page()  # as a person would: another tab
        check_page(inbox, Weigher(inbox), watch_csp(inbox), f"{base}/dev/inbox")
        expect(inbox.get_by_text(code, exact=True)).to_be_visible()
        inbox.close()
        page.get_by_label("6位验证码").fill(code)
        page.get_by_role("button", name="登录").last.click()
        expect(page).to_have_url(f"{base}/c/{catalogue.campaign_id}")

        # An unpaid order, the provider's hosted page, the paid order and its pickup page.
        page.get_by_role("button", name="参团 (1)").click()
        expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
        order = page.url
        check_page(page, weigher, refused, order)
        page.get_by_role("button", name=re.compile(r"^支付 ¥")).click()
        expect(page).to_have_url(re.compile(r"/pay/sim/"))
        check_here(page, refused)
        page.get_by_role("button", name="Pay / 支付").click()
        expect(page).to_have_url(re.compile(r"\?ok=paid$"))
        check_here(page, refused)
        check_page(page, weigher, refused, order + "/pickup")  # not in the locker yet
        expect(page.get_by_text("尚未入柜", exact=False)).to_be_visible()
        check_page(page, weigher, refused, f"{base}/orders/{picked_order}")  # not mine
        check_page(page, weigher, refused, f"{base}/orders/00000000-0000-0000-0000-000000000000")

        # Another shopper's picked-up order: the review form, and the pickup page after.
        page.context.clear_cookies()
        page.context.add_cookies([{"name": shop_session.ACCESS, "url": base,
                                   "value": token_for(settings, picked_user)}])  # fmt: skip
        check_page(page, weigher, refused, f"{base}/orders/{picked_order}")
        expect(page.get_by_role("button", name="提交评价")).to_be_visible()
        check_page(page, weigher, refused, f"{base}/orders/{picked_order}/pickup")
        expect(page.get_by_role("heading", name="已取件")).to_be_visible()


@pytest.mark.browser
def test_pickup_code_fills_the_phone_and_goes_full_screen(
    dev_shop: tuple[str, Settings, Catalogue, Any],
) -> None:
    base, settings, _catalogue, factory = dev_shop
    with factory() as session:
        parcel = in_locker(session, settings)
        order_id, user_id = parcel.order.id, parcel.order.user_id
        compartment = session.get(Compartment, parcel.booking.compartment_id)
        assert compartment is not None
        label = compartment.label
    with phone(base) as (page, refused, weigher):
        page.context.add_cookies([{"name": shop_session.ACCESS, "url": base,
                                   "value": token_for(settings, user_id)}])  # fmt: skip
        check_page(page, weigher, refused, f"{base}/orders/{order_id}/pickup")
        expect(page.get_by_text("亮度", exact=False)).to_be_visible()  # the brightness hint
        expect(page.locator("dd.big")).to_have_text(label)
        qr = page.locator(".pickup .qr-img svg").bounding_box()
        assert qr is not None and qr["width"] >= 0.8 * PHONE["width"], qr  # most of the width
        page.get_by_role("button", name="全屏显示").click()
        page.wait_for_function("document.fullscreenElement !== null")
        assert page.evaluate("document.fullscreenElement.matches('section.pickup')")
        assert page.evaluate("document.fullscreenElement.querySelector('svg') !== null")
        page.evaluate("document.exitFullscreen()")
        assert refused == [], refused
