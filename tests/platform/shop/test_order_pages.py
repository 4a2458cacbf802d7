"""Orders list, order page (pay, timeline, return, review), pickup page, poster and referral
landing: what they show in both languages and what they refuse."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import codes_match
from edge.protocol.token import generate_keypair, private_key_to_b64, verify_token
from tests.conftest import make_settings
from tests.platform.fulfilment.fx import confirm, make_locker, make_order, make_shopper, make_sku
from tests.platform.fulfilment.fx import make_station as make_fx_station
from tests.platform.groupbuy.factories import token_for
from tests.platform.shop.conftest import Catalogue, make_catalogue
from tuanbox.catalog.models import Product
from tuanbox.fulfilment import lifecycle, pickup
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.groupbuy.models import Campaign, Member
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order
from tuanbox.referrals.models import Referral
from tuanbox.referrals.services import ref_for
from tuanbox.reviews.models import Review
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}
EN = {"Accept-Language": "en"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    run = uuid.uuid4().hex
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        media_dir=str(tmp_path / "media"),
        pickup_signing_key=private_key_to_b64(generate_keypair()[0]),
    )


def sign_in_as(client: TestClient, settings: Settings, user_id: str) -> None:
    client.cookies.set(shop_session.ACCESS, token_for(settings, user_id))


@dataclass
class Parcel:
    order: Order
    booking: Booking
    ctx: lifecycle.Context


def in_locker(db: Session, settings: Settings) -> Parcel:
    """A paid order taken through confirmation, allocation and the courier's deposit."""
    station = make_fx_station(db)
    make_locker(db, station.id, [CompartmentSpec(0, 1, "S")])
    order = make_order(db, user=make_shopper(db), sku=make_sku(db), station_id=station.id)
    confirm(db, order)
    fo = db.get(FulfilmentOrder, order.id)
    assert fo is not None and fo.booking_id is not None
    booking = db.get(Booking, fo.booking_id)
    assert booking is not None
    ctx = lifecycle.Context(settings, pickup.load_signing_key(settings))
    assert lifecycle.deposited(db, booking, ctx=ctx, now=datetime.now(UTC))
    db.commit()
    return Parcel(order, booking, ctx)


def test_orders_list_needs_sign_in_and_says_each_state_in_words(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    away = client.get("/orders", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/signin?next=/orders"
    shopper = make_shopper(db_session)
    sku = make_sku(db_session)
    unpaid = create_order(db_session, user_id=shopper.id, sku_id=sku.id, qty=2,
                          unit_price_cents=sku.price_cents)  # fmt: skip
    someone_else = create_order(db_session, user_id=make_shopper(db_session).id, sku_id=sku.id,
                                qty=1, unit_price_cents=sku.price_cents)  # fmt: skip
    db_session.commit()
    sign_in_as(client, settings, shopper.id)
    page = client.get("/orders")
    assert page.status_code == 200
    assert f'href="/orders/{unpaid.id}"' in page.text and "待付款" in page.text
    assert someone_else.id not in page.text
    english = client.get("/orders", headers=EN).text
    assert "Waiting for payment" in english and "My orders" in english


def test_pay_goes_through_the_hosted_page_and_back_to_a_paid_order(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_shopper(db_session)
    sku = make_sku(db_session)
    order = create_order(db_session, user_id=shopper.id, sku_id=sku.id, qty=1,
                         unit_price_cents=sku.price_cents)  # fmt: skip
    db_session.commit()
    sign_in_as(client, settings, shopper.id)
    page = client.get(f"/orders/{order.id}", headers=EN)
    assert f'action="/orders/{order.id}/pay"' in page.text and "Pay ¥5.00" in page.text
    forged = client.post(f"/orders/{order.id}/pay", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    to_gateway = client.post(f"/orders/{order.id}/pay", headers=SAME, follow_redirects=False)
    assert to_gateway.status_code == 303
    hosted = urlsplit(to_gateway.headers["location"])
    assert hosted.path.startswith("/pay/sim/")
    assert parse_qs(hosted.query) == {"return": [f"/orders/{order.id}"]}
    sim = client.get(f"{hosted.path}?{hosted.query}")
    assert f'value="/orders/{order.id}"' in sim.text
    back = client.post(f"{hosted.path}/confirm", data={"return": f"/orders/{order.id}"},
                       follow_redirects=False)  # fmt: skip
    assert back.status_code == 303 and back.headers["location"] == f"/orders/{order.id}?ok=paid"
    # A return path to another site is dropped, not followed.
    assert "evil" not in client.get(f"{hosted.path}?return=//evil.example/x").text
    paid = client.get(back.headers["location"], headers=EN).text
    assert "Thank you! Your payment is being confirmed." in paid
    assert 'class="step current"' in paid and "Paid" in paid
    assert f'action="/orders/{order.id}/pay"' not in paid
    live = client.get(f"/orders/{order.id}/live.json").json()
    assert live["status"] != "pending_payment" and len(live["v"]) == 16


def test_another_shoppers_order_reads_as_missing(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    parcel = in_locker(db_session, settings)
    stranger = make_shopper(db_session)
    db_session.commit()
    sign_in_as(client, settings, stranger.id)
    oid = parcel.order.id
    assert client.get(f"/orders/{oid}").status_code == 404
    assert client.get(f"/orders/{oid}/pickup").status_code == 404
    assert client.get(f"/orders/{oid}/live.json").status_code == 404
    assert client.get(f"/orders/{oid}/poster.png").status_code == 404
    refused = client.post(f"/orders/{oid}/pay", headers=SAME)
    assert refused.status_code == 404
    for bad in ("x" * 37, "a%00b", "..%2F..%2Fetc"):
        assert client.get(f"/orders/{bad}").status_code in (404, 422), bad
    assert client.get("/orders/2147483648/pickup").status_code == 404


def test_pickup_page_shows_the_qr_station_locker_compartment_deadline_and_code(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    parcel = in_locker(db_session, settings)
    sign_in_as(client, settings, parcel.order.user_id)
    order_page = client.get(f"/orders/{parcel.order.id}", headers=EN).text
    assert "In the locker · ready for pickup" in order_page
    assert f'href="/orders/{parcel.order.id}/pickup"' in order_page
    page = client.get(f"/orders/{parcel.order.id}/pickup", headers=EN)
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and "Lobby of building 7" in html and parcel.booking.locker_id in html
    assert ">0-1<" in html and "Pick up by" in html and "brightness" in html
    assert 'data-worker="/orders/pickup-sw.js"' in html
    code = html.split("data-fallback-code>")[1].split("<")[0]
    assert code.isdigit() and len(code) == 6
    assert codes_match(code, parcel.booking.locker_id, parcel.booking.fallback_code_hash or "")
    assert "style=" not in html  # CSP: no inline style attributes
    worker = client.get("/orders/pickup-sw.js")
    assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]
    token = pickup.token_for(
        parcel.booking, _compartment(db_session, parcel), parcel.ctx.signing_key
    )
    checked = verify_token(token, parcel.ctx.signing_key.public_key(),
                           locker_id=parcel.booking.locker_id, now=datetime.now(UTC))  # fmt: skip
    assert checked.cmp == "0-1"
    assert len(page.content) < 100_000


def _compartment(db: Session, parcel: Parcel) -> Compartment:
    found = db.get(Compartment, parcel.booking.compartment_id)
    assert found is not None
    return found


def _picked_up(db: Session, settings: Settings) -> Parcel:
    parcel = in_locker(db, settings)
    assert lifecycle.picked_up(db, parcel.booking, ctx=parcel.ctx, now=datetime.now(UTC))
    db.commit()
    return parcel


def test_return_within_the_window_and_withdraw(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    parcel = _picked_up(db_session, settings)
    sign_in_as(client, settings, parcel.order.user_id)
    oid = parcel.order.id
    page = client.get(f"/orders/{oid}", headers=EN).text
    assert "Picked up" in page and f'action="/orders/{oid}/return"' in page
    bad = client.post(f"/orders/{oid}/return", data={"method": "drone"}, headers=SAME)
    assert bad.status_code == 422
    asked = client.post(f"/orders/{oid}/return", data={"method": "locker", "reason": "too ripe"},
                        headers=SAME, follow_redirects=False)  # fmt: skip
    assert asked.headers["location"] == f"/orders/{oid}?ok=return"
    db_session.refresh(parcel.order)
    assert parcel.order.status == "return_requested"
    shown = client.get(f"/orders/{oid}", headers=EN).text
    assert "Return requested" in shown and "/return/withdraw" in shown
    again = client.post(f"/orders/{oid}/return", data={"method": "locker"}, headers=SAME,
                        follow_redirects=False)  # fmt: skip
    assert again.headers["location"].startswith(f"/orders/{oid}?e=")
    withdrawn = client.post(f"/orders/{oid}/return/withdraw", headers=SAME, follow_redirects=False)
    assert withdrawn.headers["location"] == f"/orders/{oid}?ok=withdrawn"
    db_session.refresh(parcel.order)
    assert parcel.order.status == "completed"
    # Past the window the form is gone and a forged post is refused.
    parcel.order.picked_up_at = datetime.now(UTC) - timedelta(days=settings.return_window_days + 1)
    db_session.commit()
    assert '/return"' not in client.get(f"/orders/{oid}").text
    late = client.post(f"/orders/{oid}/return", data={"method": "locker"}, headers=SAME,
                       follow_redirects=False)  # fmt: skip
    assert late.headers["location"] == f"/orders/{oid}?e=RETURN_WINDOW_CLOSED"


def test_one_review_after_pickup_shown_on_the_campaign_page(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    waiting = in_locker(db_session, settings)
    sign_in_as(client, settings, waiting.order.user_id)
    early = client.post(f"/orders/{waiting.order.id}/review", data={"rating": "5"}, headers=SAME,
                        follow_redirects=False)  # fmt: skip
    assert early.headers["location"].endswith("?e=NOT_REVIEWABLE")

    parcel = _picked_up(db_session, settings)
    sign_in_as(client, settings, parcel.order.user_id)
    oid = parcel.order.id
    assert f'action="/orders/{oid}/review"' in client.get(f"/orders/{oid}").text
    for bad in ({"rating": "6"}, {"rating": "0"}, {"rating": "2147483648"}, {"rating": "x"}):
        assert client.post(f"/orders/{oid}/review", data=bad, headers=SAME).status_code == 422
    assert client.post(f"/orders/{oid}/review", data={"rating": "4", "text": "a\x00b"},
                       headers=SAME).status_code in (400, 422)  # fmt: skip
    long = client.post(f"/orders/{oid}/review", data={"rating": "4", "text": "x" * 501},
                       headers=SAME, follow_redirects=False)  # fmt: skip
    assert long.headers["location"].endswith("?e=INVALID_REVIEW")
    done = client.post(f"/orders/{oid}/review", data={"rating": "4", "text": "Fresh and sweet"},
                       headers=SAME, follow_redirects=False)  # fmt: skip
    assert done.headers["location"] == f"/orders/{oid}?ok=review"
    twice = client.post(f"/orders/{oid}/review", data={"rating": "1"}, headers=SAME,
                        follow_redirects=False)  # fmt: skip
    assert twice.headers["location"].endswith("?e=ALREADY_REVIEWED")
    (review,) = db_session.scalars(select(Review).where(Review.order_id == oid)).all()
    assert (review.rating, review.text, review.merchant_reply) == (4, "Fresh and sweet", None)
    shown = client.get(f"/orders/{oid}", headers=EN).text
    assert "Your review" in shown and "Fresh and sweet" in shown

    from tuanbox.shop import listing

    found = listing.reviews(db_session, review.product_id)
    assert found.count == 1 and found.average == 4.0 and found.items[0].text == "Fresh and sweet"


def test_order_links_its_lot_trace_page(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    catalogue = make_catalogue(db_session)
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    leader = _leader_order(db_session, catalogue)
    product = db_session.scalars(
        select(Product)
        .join(Order, Order.merchant_id == Product.merchant_id)
        .where(Order.id == leader.id)
    ).first()
    assert product is not None
    product.gtin = "09506000134352"
    campaign.lot_code = "LOT-7"
    db_session.commit()
    sign_in_as(client, settings, leader.user_id)
    page = client.get(f"/orders/{leader.id}").text
    assert 'href="/01/09506000134352/10/LOT-7"' in page


def _leader_order(db: Session, catalogue: Catalogue) -> Order:
    member = db.scalars(select(Member).where(Member.group_id == catalogue.group_id)).first()
    assert member is not None and member.order_id is not None
    order = db.get(Order, member.order_id)
    assert order is not None
    return order


def _decode(png: bytes) -> str:
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


def test_poster_carries_the_group_and_inviter_and_landing_records_first_touch(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    catalogue = make_catalogue(db_session)
    leader = _leader_order(db_session, catalogue)
    invitee, other_inviter = catalogue.shoppers[1], catalogue.shoppers[2]
    sign_in_as(client, settings, leader.user_id)
    assert "/poster.png" in client.get(f"/orders/{leader.id}").text
    poster = client.get(f"/orders/{leader.id}/poster.png")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/png"
    link = urlsplit(_decode(poster.content))
    assert f"{link.scheme}://{link.netloc}" == settings.public_base_url
    assert link.path == f"/j/{catalogue.group_id}"
    by = parse_qs(link.query)["by"][0]
    assert by.startswith(leader.user_id + ".")

    own = client.get(f"{link.path}?{link.query}")  # the inviter opens their own link
    assert own.status_code == 200 and db_session.scalars(select(Referral)).all() == []

    client.cookies.clear()
    client.cookies.set(shop_session.ACCESS, token_for(settings, invitee))
    landed = client.get(f"{link.path}?{link.query}", headers=EN)
    assert landed.status_code == 200 and "A neighbour invited you" in landed.text
    assert f'action="/c/{catalogue.campaign_id}/groups/{catalogue.group_id}/join"' in landed.text
    later = ref_for(settings, catalogue.group_id, other_inviter)
    client.get(f"{link.path}?by={later}")  # a second inviter's link: first touch wins
    forged = f"{other_inviter}.AAAAAAAAAAAAAAAAAAAAAA"
    assert client.get(f"{link.path}?by={forged}").status_code == 200
    rows = db_session.scalars(select(Referral)).all()
    assert [(r.invitee_id, r.inviter_id) for r in rows] == [(invitee, leader.user_id)]


def test_signed_out_landing_keeps_the_first_inviter_until_sign_in(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    catalogue = make_catalogue(db_session)
    leader = _leader_order(db_session, catalogue)
    invitee, second = catalogue.shoppers[1], catalogue.shoppers[2]
    first_ref = ref_for(settings, catalogue.group_id, leader.user_id)
    page = client.get(f"/j/{catalogue.group_id}?by={first_ref}", headers=EN)
    assert page.status_code == 200 and "Sign in to join" in page.text
    assert client.cookies.get("tuanbox_ref") == f"{catalogue.group_id}~{first_ref}"
    # Then a second neighbour's link, and the shopper signs in on that one.
    client.cookies.set(shop_session.ACCESS, token_for(settings, invitee))
    client.get(f"/j/{catalogue.group_id}?by={ref_for(settings, catalogue.group_id, second)}")
    rows = db_session.scalars(select(Referral)).all()
    assert [(r.invitee_id, r.inviter_id) for r in rows] == [(invitee, leader.user_id)]
    assert client.get("/j/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get(f"/j/{catalogue.group_id}?by={'x' * 81}").status_code == 422


def test_fallback_code_is_derived_from_the_signing_key_and_token_id() -> None:
    key, other = generate_keypair()[0], generate_keypair()[0]
    booking = Booking(locker_id="L-1", ref="o-1")
    now = datetime.now(UTC)
    code = pickup.issue(booking, now=now, valid_until=now + timedelta(hours=1), key=key)
    assert pickup.fallback_code_for(key, booking.pickup_token_id or "") == code
    assert pickup.shown_fallback_code(booking, key) == code
    assert pickup.shown_fallback_code(booking, other) is None  # a rotated key shows nothing
    again = Booking(locker_id="L-1", ref="o-1")
    pickup.issue(again, now=now, valid_until=now + timedelta(hours=1), key=key)
    assert again.pickup_token_id != booking.pickup_token_id  # a fresh token, a fresh code


def test_poster_shows_the_product_price_and_tiers_in_the_shoppers_language(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """The poster is exactly the product, the price (the list price struck), the tier ladder,
    the group's progress and the QR: drawn again from those words, it is the same PNG."""
    from tuanbox.shop import poster

    catalogue = make_catalogue(db_session)
    leader = _leader_order(db_session, catalogue)
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    sign_in_as(client, settings, leader.user_id)
    for headers, words in (
        (EN, ("Tuanbox", "3 people ¥9.00 · 5 people ¥8.00 · 10 people ¥7.00",
              "Only 3 more to go", "Scan to join my group")),
        ({}, ("团箱", "3人团 ¥9.00 · 5人团 ¥8.00 · 10人团 ¥7.00", "还差 3 人",
              "扫码加入我的团")),
    ):  # fmt: skip
        png = client.get(f"/orders/{leader.id}/poster.png", headers=headers).content
        brand, tiers, progress, caption = words
        drawn = poster.PosterText(brand=brand, product=campaign.title, price="¥7.00",
                                  list_price="¥10.00", tiers=tiers, progress=progress,
                                  caption=caption, url=_decode(png))  # fmt: skip
        assert png == poster.render(drawn), headers
