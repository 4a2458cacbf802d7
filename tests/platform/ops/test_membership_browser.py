"""Ops' membership pages in headless Chromium on a 390 px phone against a live API: both pass
axe, the CSP and the width and tap-target checks; a member found by phone is refunded the
amount shown (after the confirm dialog), and a member price is refused in words, then set."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select

from telemetry.settings import TelemetrySettings
from tests.conftest import make_settings
from tests.platform.coupons.support import template
from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.ops.test_ops_browser import live_api
from tests.platform.shop.test_pages_browser import AXE, AXE_RUN, PHONE, SMALL_TARGETS
from tests.support import watch_csp
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH
from tuanbox.audit.models import AuditEntry
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.growth.models import LeaderboardReward
from tuanbox.membership import services as membership
from tuanbox.membership.models import MemberPrice, MembershipTerm
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay


def _checked(page: Page, refused: list[str], url: str) -> None:
    """axe (serious and critical), tap targets, the phone's width, the CSP. The dashboard
    keeps its live stream open, so the page is checked once loaded, not at network idle."""
    page.goto(url)
    page.wait_for_load_state("load")
    expect(page.locator("main h1")).to_be_visible()
    assert page.evaluate(AXE_RUN) == [], url
    assert page.evaluate(SMALL_TARGETS) == [], url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (url, width)
    assert refused == [], (url, refused)


@pytest.mark.browser
def test_ops_refund_a_membership_and_set_a_member_price_on_a_phone(
    fresh_database: Callable[[], str], telemetry: TelemetrySettings, tmp_path: Path
) -> None:
    settings = make_settings(database_url=fresh_database())
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    phone = f"+86137{uuid.uuid4().int % 10**8:08d}"
    with factory() as session:
        shopper = make_user(session, phone=phone, settings=settings)
        sim = SimPay(settings)
        term, _url = membership.start_purchase(session, settings, shopper.id, sim)
        body, headers = sim.payment_webhook(sim.charge(session, term.id, term.amount_cents))
        assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
        product = make_product(session, make_merchant(session))
        sku = make_sku(session, product, price_cents=2000)
        free = template(session, name="Free order", merchant_id=None)
        ops = make_user(session, "ops")
        shopper_id, term_id, sku_id, product_name = shopper.id, term.id, sku.id, product.name
        free_id = free.id
        session.commit()
        token = issue_access_token(settings, Principal(ops.id, "ops"))
    expected = settings.membership_price_cents * 364 // 365
    amount = f"¥{expected // 100}.{expected % 100:02d}"

    with live_api(settings, telemetry) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                          has_touch=True)  # fmt: skip
            context.add_init_script(path=str(AXE))
            page = context.new_page()
            refused = watch_csp(page)
            dialogs: list[str] = []

            def accept(dialog: object) -> None:
                dialogs.append(dialog.message)  # type: ignore[attr-defined]
                dialog.accept()  # type: ignore[attr-defined]

            page.on("dialog", accept)
            page.goto(f"{base}/ops/login?token={token}")
            expect(page).to_have_url(f"{base}/ops")

            _checked(page, refused, f"{base}/ops/membership")
            page.get_by_label("Member's phone").fill(phone.removeprefix("+86"))
            page.get_by_role("button", name="Look up").click()
            expect(page.locator("#refund-quote")).to_contain_text(amount)
            _checked(page, refused, page.url)  # the member shown, the refund button
            page.get_by_role("button", name=f"Refund {amount} and end membership").click()
            expect(page.locator("#refund-quote")).to_have_text("No paid days left to refund.")
            expect(page.locator("#member")).to_contain_text("not a member")
            assert dialogs == [f"Refund {amount} and end this membership now?"]

            _checked(page, refused, f"{base}/ops/member-prices")
            page.get_by_label("Product name").fill(product_name)
            page.get_by_role("button", name="Search").click()
            card = page.locator(f'article[data-sku-id="{sku_id}"]')
            card.get_by_label("Member price (¥)").fill("18,5x")
            card.get_by_role("button", name="Save").click()
            expect(page.locator("#action-error")).to_contain_text("enter an amount in yuan")
            card.get_by_label("Member price (¥)").fill("18.50")
            card.get_by_role("button", name="Save").click()
            expect(card.locator("[data-member-price]")).to_have_text("member ¥18.50")
            _checked(page, refused, page.url)

            # The invites page: the week's leaderboard reward chosen on the phone.
            _checked(page, refused, f"{base}/ops/invites")
            reward = page.locator('article[data-reward="week"]')
            reward.get_by_label("Top places").fill("500")
            reward.get_by_role("button", name="Save").click()
            expect(page.locator("#action-error")).to_contain_text("less than or equal to 100")
            reward.get_by_label("Top places").fill("10")
            reward.get_by_role("button", name="Save").click()
            expect(reward.locator("[data-reward-now]")).to_have_text("top 10 get “Free order”")
            _checked(page, refused, page.url)
        finally:
            browser.close()

    with factory() as session:
        paid = session.get(MembershipTerm, term_id)
        assert paid is not None and (paid.status, paid.refunded_cents) == ("refunded", expected)
        price = session.get(MemberPrice, sku_id)
        assert price is not None and price.price_cents == 1850
        actions = set(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.subject_id.in_([shopper_id, sku_id]))
            )
        )
        assert actions == {"membership.refund", "membership.member_price"}
        reward = session.get(LeaderboardReward, "week")
        assert reward is not None and (reward.template_id, reward.top_n) == (free_id, 10)
    engine.dispose()
