"""Console wave plan, pre-sale receipts, returns and reviews queues over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient
from tests.platform.fulfilment.fx import TEST_ACTOR, make_locker, make_station
from tests.platform.groupbuy.factories import pay, tiered_spec
from tests.platform.presale.fx import succeeded_group
from traceability.settings import TraceSettings
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.fulfilment.allocation import allocate
from tuanbox.groupbuy.services import create_campaign
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order, transition
from tuanbox.presale import receiving
from tuanbox.returns import services as returns
from tuanbox.reviews.services import write_review
from tuanbox.settings import Settings
from tuanbox.shop import listing
from tuanbox.shop.pagecache import get_opener

EN = {"Accept-Language": "en"}


def _order(session: Session, settings: Settings, console: ConsoleClient, station_id: str) -> Order:
    sku = session.get(Sku, console.world.sku_id)
    assert sku is not None
    order = create_order(
        session, user_id=console.world.shopper.id, sku_id=sku.id, qty=1,
        unit_price_cents=sku.price_cents, station_id=station_id,
    )  # fmt: skip
    pay(session, settings, order.id)
    session.refresh(order)
    return order


def _picked_up(session: Session, settings: Settings, console: ConsoleClient) -> Order:
    order = _order(session, settings, console, make_station(session).id)
    for status in ("allocated", "ready_for_pickup", "picked_up"):
        transition(session, order, status, actor=TEST_ACTOR, reason="fulfilment")
    return order


def test_wave_plan_lists_doors_and_the_pick_list(
    console: ConsoleClient,
    console_as: Callable[[User], ConsoleClient],
    db_session: Session,
    settings: Settings,
) -> None:
    station = make_station(db_session)
    locker, _ = make_locker(
        db_session,
        station.id,
        [CompartmentSpec(0, 1, "L", "chilled"), CompartmentSpec(0, 2, "L", "chilled")],
    )
    booked = _order(db_session, settings, console, station.id)
    waiting = _order(db_session, settings, console, station.id)
    assert booked.status == "confirmed" and booked.wave_id and waiting.wave_id == booked.wave_id
    allocate(db_session, booked, settings=settings, now=utcnow())
    db_session.refresh(booked)
    assert booked.status == "allocated"
    page = console.get("/console/waves", headers=EN)
    assert page.status_code == 200, page.text
    assert station.name in page.text and locker.id in page.text and "0-1" in page.text
    assert booked.id[:8] in page.text and waiting.id[:8] in page.text
    assert "Not yet given a door" in page.text and "Pick list" in page.text
    one = console.get(f"/console/waves/{station.id}", headers=EN)
    assert one.status_code == 200 and locker.id in one.text and "data-print" in one.text
    them = console_as(console.world.other_staff)
    assert booked.id[:8] not in them.get("/console/waves").text
    theirs = them.get(f"/console/waves/{station.id}", headers=EN)
    assert theirs.status_code == 200 and booked.id[:8] not in theirs.text
    assert console.get("/console/waves/st-nowhere").status_code == 404


def test_presale_receipts_and_purchase_order(
    console_as: Callable[[User], ConsoleClient], db_session: Session, settings: Settings
) -> None:
    station = make_station(db_session)
    closed = succeeded_group(db_session, settings, station.id, presale=True)
    staff = db_session.get(User, closed.staff_id)
    assert staff is not None
    mine = console_as(staff)
    before = mine.get("/console/presale", headers=EN)
    assert before.status_code == 200, before.text
    assert "Still waiting for the batch" in before.text and station.name in before.text
    po = mine.get(f"/console/presale/{closed.campaign_id}", headers=EN)
    assert po.status_code == 200 and "Purchase order" in po.text
    csv_body = mine.get(f"/console/presale/{closed.campaign_id}/purchase-order.csv").text
    assert csv_body.splitlines()[1].endswith(",2,2,1")  # qty, orders, groups
    receiving.receive(
        db_session, closed.campaign_id, station_id=station.id, qty=2, from_gln=None,
        actor=Actor("hub-1", "ops"), settings=settings, trace=TraceSettings(), now=utcnow(),
    )  # fmt: skip
    after = mine.get("/console/presale", headers=EN)
    assert "Received at the hubs" in after.text and "Still waiting for the batch" not in after.text


def test_presale_of_another_merchant_is_not_found(
    console: ConsoleClient, db_session: Session, settings: Settings
) -> None:
    closed = succeeded_group(db_session, settings, make_station(db_session).id, presale=True)
    assert console.get(f"/console/presale/{closed.campaign_id}").status_code == 404
    assert (
        console.get(f"/console/presale/{closed.campaign_id}/purchase-order.csv").status_code == 404
    )
    assert closed.campaign_id not in console.get("/console/presale").text


def test_returns_queue_receives_and_refunds(
    console: ConsoleClient,
    console_as: Callable[[User], ConsoleClient],
    db_session: Session,
    settings: Settings,
) -> None:
    order = _picked_up(db_session, settings, console)
    shopper = Actor(order.user_id, "shopper")
    ret = returns.request_return(db_session, order.id, shopper, method="locker", reason="soft")
    page = console.get("/console/returns", headers=EN)
    assert order.id[:8] in page.text and "Waiting for the shopper" in page.text
    returns.mark_dropped_off(db_session, ret.id, Actor("ops-1", "ops"), station_id="st-1")
    page = console.get("/console/returns", headers=EN)
    assert f'action="/console/returns/{ret.id}/received"' in page.text
    url = f"/console/returns/{ret.id}/received"
    assert console.post(url).status_code == 403  # no CSRF token
    them = console_as(console.world.other_staff)
    assert them.post(url, data={"csrf": them.csrf}).status_code == 404
    done = console.post(url, data={"csrf": console.csrf})
    assert done.status_code == 303, done.text
    db_session.refresh(order)
    db_session.refresh(ret)
    assert order.status == "returned" and ret.status == "received" and ret.refund_id
    again = console.post(url, data={"csrf": console.csrf})
    assert again.status_code == 303  # receiving twice changes nothing
    assert order.id[:8] in console.get("/console/returns").text


def test_reviews_queue_reply_shows_to_shoppers(
    app: FastAPI,
    client: TestClient,
    console: ConsoleClient,
    console_as: Callable[[User], ConsoleClient],
    db_session: Session,
    settings: Settings,
) -> None:
    app.dependency_overrides[get_opener] = lambda: lambda: nullcontext(db_session)
    campaign = create_campaign(
        db_session, merchant_id=console.world.merchant_id, actor_id=console.world.staff.id,
        spec=tiered_spec(console.world.sku_id, title="Peach week"),
    )  # fmt: skip
    order = _picked_up(db_session, settings, console)
    review = write_review(
        db_session, order.id, order.user_id, rating=3, text="Bruised", now=datetime.now(UTC)
    )
    page = console.get("/console/reviews", headers=EN)
    assert "Bruised" in page.text and "1 reviews without a reply" in page.text
    url = f"/console/reviews/{review.id}/reply"
    assert console.post(url, data={"reply": "Sorry!"}).status_code == 403  # no CSRF token
    them = console_as(console.world.other_staff)
    assert them.post(url, data={"csrf": them.csrf, "reply": "Spam"}).status_code == 404
    bad = console.post(url, data={"csrf": console.csrf, "reply": "a\x00b"})
    assert bad.status_code == 422
    done = console.post(url, data={"csrf": console.csrf, "reply": "Sorry, a new box is coming"})
    assert done.status_code == 303
    db_session.refresh(review)
    assert review.merchant_reply == "Sorry, a new box is coming" and review.replied_at
    console.post(url, data={"csrf": console.csrf, "reply": "Sorry, a new box is coming"})
    audits = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "review.reply")).all()
    assert len(audits) == 1  # the same reply again records nothing
    assert "0 reviews without a reply" in console.get("/console/reviews", headers=EN).text
    shown = listing.reviews(db_session, review.product_id)
    assert shown.items[0].reply == "Sorry, a new box is coming"
    shop_page = client.get(f"/c/{campaign.id}", headers=EN)
    assert shop_page.status_code == 200, shop_page.text
    assert "Seller's reply: Sorry, a new box is coming" in shop_page.text
