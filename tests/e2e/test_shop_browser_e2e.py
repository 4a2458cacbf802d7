"""The shopper's whole path in headless Chromium on a phone, through the real bridge and a
simulated locker: sign in, browse, open a campaign, fill a group from three browsers (one
arriving through the share poster's QR), pay on the hosted page, watch the order reach the
locker live, show the pickup QR (also offline), read it back from the screenshot's pixels
into the locker's scanner, see the order picked up; then a review, a return, the language
switch, and a flash sale bought from the home page. Screenshots of every step are kept in
var/test-artifacts/shop-e2e/.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import select

from edge.agent.demo import DemoLocker, run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import courier_code, make_locker, make_station
from tests.platform.groupbuy.factories import make_shop, tiered_spec
from tests.platform.shop.test_pages_browser import AXE, PHONE, Weigher, check_page
from tests.platform.shop.test_signin import last_code
from tests.support import free_port, watch_csp
from tuanbox.api.app import create_app
from tuanbox.api.live import CHROMIUM_ARGS, CHROMIUM_PATH, serve
from tuanbox.catalog.models import Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.flashsale import services as flash
from tuanbox.fulfilment import waves
from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
from tuanbox.fulfilment.pickup import public_key_b64
from tuanbox.groupbuy.closing import close_due_groups
from tuanbox.groupbuy.domain import Tier
from tuanbox.groupbuy.services import create_campaign
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import standard_layout
from tuanbox.orders.models import Order
from tuanbox.referrals.models import Referral
from tuanbox.reviews.models import Review

ARTIFACTS = Path(__file__).parents[2] / "var" / "test-artifacts" / "shop-e2e"
GTIN, LOT = "09506000134352", "LOT-E2E-1"


class Hits:
    """The app behind a counter of the paths it served (to prove a page came from the phone)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class Shots:
    def __init__(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
        self.n = 0

    def take(self, page: Page, name: str) -> bytes:
        self.n += 1
        path = str(ARTIFACTS / f"{self.n:02d}-{name}.png")
        # A click may have started a navigation: shoot the page it lands on, not the swap.
        page.wait_for_load_state()
        try:
            return page.screenshot(path=path)
        except PlaywrightError:  # "Unable to capture screenshot" mid-navigation: once more
            page.wait_for_load_state()
            return page.screenshot(path=path)


def qr_texts(png: bytes) -> list[str]:
    return [str(found.text) for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def sign_in(page: Page, p: Platform, phone: str) -> None:
    """On /signin: phone, the code from the message, back where the page was going."""
    page.get_by_label("Phone number").fill(phone)
    page.get_by_role("button", name="Send code").click()
    with p.session() as session:
        code = last_code(session, p.settings, phone)
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").last.click()


def pay(page: Page) -> str:
    """From an order page: the provider's hosted page, pay, and back; returns the order id."""
    expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    order_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name=re.compile(r"^Pay ¥")).click()
    expect(page).to_have_url(re.compile(r"/pay/sim/"))
    page.get_by_role("button", name="Pay / 支付").click()
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}\?ok=paid$"))
    return order_id


def _order(p: Platform, order_id: str) -> Order:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order


def _acked(p: Platform, type_: str, n: int) -> bool:
    with p.session() as session:
        rows = session.scalars(select(OutboxCommand).where(OutboxCommand.type == type_)).all()
        return len(rows) >= n and all(r.status == "done" for r in rows)


def _deposit(p: Platform, sim: DemoLocker, order_id: str) -> str:
    """The courier's run: the run-sheet code opens the door, the parcel goes in."""
    with p.session() as session:
        fo = session.get(FulfilmentOrder, order_id)
        assert fo is not None and fo.booking_id is not None
        booking = session.get(Booking, fo.booking_id)
        assert booking is not None
        comp = session.get(Compartment, booking.compartment_id)
        assert comp is not None
        label, code = comp.label, courier_code(p.settings, booking)
    sim.scan("*" + code)
    wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
    sim.board.place_item(label)
    sim.board.close_door(label)
    return label


def _setup(p: Platform) -> dict[str, str]:
    now = utcnow()
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, standard_layout())
        shop = make_shop(session)
        sku = session.get(Sku, shop.sku_id)
        assert sku is not None
        product = session.get(Product, sku.product_id)
        assert product is not None
        product.gtin = GTIN
        campaign = create_campaign(
            session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
            spec=tiered_spec(shop.sku_id, title="Blueberries for three", tiers=(Tier(2, 900),
                             Tier(3, 800)), max_size=3, station_ids=(station.id,), lot_code=LOT),
        )  # fmt: skip
        flash_sku = Sku(product_id=product.id, name="1 kg", price_cents=2000, stock_on_hand=50)
        session.add(flash_sku)
        session.flush()
        sale = flash.create_sale(
            session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
            spec=flash.SaleSpec(sku_id=flash_sku.id, title="Midnight blueberries", price_cents=990,
                                stock_cap=5, per_user_limit=1, starts_at=now - timedelta(minutes=1),
                                ends_at=now + timedelta(minutes=30)),
        )  # fmt: skip
        session.commit()
        return {"station": station.id, "locker": locker.id, "campaign": campaign.id,
                "sale": sale.id}  # fmt: skip


def _phone_context(browser: Any, locale: str = "en-US") -> BrowserContext:
    context: BrowserContext = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale
    )
    context.add_init_script(path=str(AXE))
    return context


@pytest.mark.browser
def test_a_shopper_path_from_sign_in_to_picked_up_in_a_real_browser(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    port = free_port()
    run = uuid.uuid4().hex[:8]
    p = platform_for(
        mqtt_broker[1],
        public_base_url=f"http://127.0.0.1:{port}",
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        # Every browser here shares one loopback address and no device id: to risk control
        # three neighbours would look like one person's accounts filling their own group.
        risk_enabled=False,
    )
    ids = _setup(p)
    phones = [f"1380013{n}{run[:3].translate(str.maketrans('abcdef', '123456'))}" for n in "123"]
    shots = Shots()
    bridges(p)
    sim = run_locker(ids["locker"], tmp_path / "locker", mqtt_port=mqtt_broker[1],
                     pickup_public_key=public_key_b64(p.ctx.signing_key))  # fmt: skip
    hits = Hits(create_app(p.settings, engine=p.engine))
    try:
        with serve(hits, port=port) as base, sync_playwright() as pw:  # type: ignore[arg-type]
            browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS))
            try:
                _walk(browser, base, p, ids, phones, sim, shots, hits)
            finally:
                browser.close()
    finally:
        sim.stop()


def _walk(
    browser: Any,
    base: str,
    p: Platform,
    ids: dict[str, str],
    phones: list[str],
    sim: DemoLocker,
    shots: Shots,
    hits: Hits,
) -> None:
    ctx_a, ctx_b, ctx_c = (_phone_context(browser) for _ in range(3))
    a, b, c = ctx_a.new_page(), ctx_b.new_page(), ctx_c.new_page()
    refused = [watch_csp(page) for page in (a, b, c)]

    # A browses: home, the campaign, opens a group (signing in on the way), pays.
    a.goto(base + "/")
    a.get_by_role("link", name="Blueberries for three").click()
    expect(a.get_by_role("heading", name="Blueberries for three")).to_be_visible()
    shots.take(a, "campaign")
    a.get_by_role("button", name="Open a new group").click()
    expect(a).to_have_url(re.compile(r"/signin\?next="))
    sign_in(a, p, phones[0])
    expect(a).to_have_url(f"{base}/c/{ids['campaign']}")
    a.get_by_role("button", name="Open a new group").click()
    shots.take(a, "order-to-pay")
    order_a = pay(a)
    expect(a.locator("#order-live [data-status]")).to_have_text(
        "Paid · waiting for the group to fill"
    )
    shots.take(a, "paid-waiting-for-group")
    assert (
        a.get_by_role("link", name="Where it comes from: trace this lot").get_attribute("href")
        == f"/01/{GTIN}/10/{LOT}"
    )

    # A's share poster, read back to its link; B opens it, signs in there, joins and pays.
    poster = a.request.get(base + a.get_by_role("link", name="Share poster").get_attribute("href"))
    assert poster.ok and poster.headers["content-type"] == "image/png"
    (link,) = qr_texts(poster.body())
    (ARTIFACTS / "share-poster.png").write_bytes(poster.body())
    group_id = _order(p, order_a).group_id
    assert link.startswith(f"{base}/j/{group_id}?by={_order(p, order_a).user_id}.")
    b.goto(link)
    expect(b.get_by_text("A neighbour invited you to this group.")).to_be_visible()
    shots.take(b, "share-landing")
    b.get_by_role("link", name="Sign in to join").click()
    sign_in(b, p, phones[1])
    expect(b).to_have_url(link)
    b.get_by_role("button", name="Join this group").click()
    order_b = pay(b)
    with p.session() as session:
        (ref,) = session.scalars(select(Referral)).all()
        assert (ref.group_id, ref.invitee_id, ref.inviter_id) == (
            group_id, _order(p, order_b).user_id, _order(p, order_a).user_id)  # fmt: skip

    # C joins from the campaign page: the group fills.
    c.goto(f"{base}/c/{ids['campaign']}")
    c.get_by_role("button", name="Join (1)").click()
    sign_in(c, p, phones[2])
    c.get_by_role("button", name="Join (1)").click()
    order_c = pay(c)
    orders = [order_a, order_b, order_c]

    # The beat's jobs: the filled group closes (confirmed), the wave books compartments.
    assert close_due_groups(p.factory)
    status = a.locator("#order-live [data-status]")
    # A's page follows the order without a reload.
    expect(status).to_have_text("Confirmed · ships in the next delivery wave", timeout=10_000)
    shots.take(a, "confirmed-live")
    wave_id = _order(p, order_a).wave_id
    with p.session() as session:
        wave = session.get(DeliveryWave, wave_id)
        assert wave is not None
        allocate_at = wave.allocate_at
    assert waves.run(p.factory, p.settings, due_at=allocate_at) == len(orders)
    wait_for(lambda: _acked(p, "assign", len(orders)), 30, "assigns acknowledged")
    expect(status).to_have_text("At the station hub", timeout=10_000)

    # The courier deposits A's parcel; A's page shows it in the locker, live.
    label = _deposit(p, sim, order_a)
    expect(a.get_by_role("link", name="Show pickup code")).to_be_visible(timeout=30_000)
    shots.take(a, "in-the-locker-live")
    wait_for(lambda: _acked(p, "arm_pickup", 1), 30, "pickup armed")

    # The pickup page: QR, station, locker, compartment, deadline, keypad code; kept offline.
    a.get_by_role("link", name="Show pickup code").click()
    expect(a.get_by_text("Turn your screen brightness up", exact=False)).to_be_visible()
    expect(a.locator("dd.big")).to_have_text(label)
    check_page(a, Weigher(a), refused[0], a.url)  # axe and friends on the ready pickup page
    expect(a.locator("body[data-offline-ready='1']")).to_have_count(1, timeout=10_000)
    tokens = [t for t in qr_texts(shots.take(a, "pickup-qr")) if t.startswith("TBX1.")]
    assert len(tokens) == 1, "the QR reads back from the screenshot's pixels"
    pickup_url = a.url
    served = hits.paths.count(f"/orders/{order_a}/pickup")
    ctx_a.set_offline(True)
    a.reload()
    expect(a.locator("dd.big")).to_have_text(label)
    assert hits.paths.count(f"/orders/{order_a}/pickup") == served, "served by the phone's copy"
    assert [t for t in qr_texts(shots.take(a, "pickup-qr-offline")) if t.startswith("TBX1.")] == (
        tokens
    )
    ctx_a.set_offline(False)

    # Typed into the locker's scanner: the door opens; the page says picked up.
    sim.scan(tokens[0])
    wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
    sim.board.remove_item(label)
    sim.board.close_door(label)
    wait_for(lambda: _order(p, order_a).status == "completed", 30, "completed")
    expect(a.get_by_role("heading", name="Picked up")).to_be_visible(timeout=15_000)
    shots.take(a, "picked-up")
    assert a.url == pickup_url

    # A reviews the order, then asks to return it; both in words on the order page.
    a.goto(f"{base}/orders/{order_a}")
    a.get_by_label("4 out of 5 stars").check()
    a.get_by_label("What did you think? (optional)").fill("Sweet and cold, straight from the box")
    a.get_by_role("button", name="Send review").click()
    expect(a.get_by_text("Thank you for your review.")).to_be_visible()
    a.get_by_label("Hand it to a courier").check()
    a.get_by_label("Reason (optional)").fill("one box was crushed")
    a.get_by_role("button", name="Request a return").click()
    expect(a.get_by_text("Return requested", exact=False).first).to_be_visible()
    shots.take(a, "reviewed-and-return-requested")
    with p.session() as session:
        (review,) = session.scalars(select(Review)).all()
        assert (review.order_id, review.rating) == (order_a, 4)
    assert _order(p, order_a).status == "return_requested"

    # The language switch, both ways.
    a.get_by_role("button", name="中文").click()
    expect(a.get_by_role("link", name="我的订单")).to_be_visible()
    expect(a.get_by_text("已申请退货").first).to_be_visible()
    shots.take(a, "order-in-chinese")
    a.get_by_role("button", name="English").click()
    expect(a.get_by_role("link", name="My orders")).to_be_visible()

    # C buys the flash sale from the home page and pays.
    c.goto(base + "/")
    c.get_by_role("button", name=re.compile("Buy now")).click()
    shots.take(c, "flash-order")
    flash_order = pay(c)
    assert _order(p, flash_order).kind == "flash"
    c.goto(base + "/orders")
    expect(c.get_by_role("link", name="Blueberries 500 g")).to_have_count(2)
    shots.take(c, "orders-list")

    # Every page of this path: axe, CSP, weight, tap targets, no sideways scrolling.
    weigher = Weigher(c)
    for path in ("/orders", f"/orders/{order_c}", f"/orders/{flash_order}",
                 f"/j/{group_id}"):  # fmt: skip
        check_page(c, weigher, refused[2], base + path)
    check_page(a, Weigher(a), refused[0], f"{base}/orders/{order_a}")
    check_page(a, Weigher(a), refused[0], f"{base}/orders/{order_a}/pickup")
    assert refused == [[], [], []]
