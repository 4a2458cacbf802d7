"""The console dashboard `/console/reports` over HTTP: the staff's own merchant's numbers only,
campaign comparison, period validation, refusals and both languages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient, ConsoleWorld
from tuanbox.accounts.models import User
from tuanbox.db.base import utcnow
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.lockers.services import create_station
from tuanbox.orders.models import Order
from tuanbox.reports import rollup
from tuanbox.reports.days import local_day
from tuanbox.reports.models import CampaignViews

TZ = ZoneInfo("Asia/Shanghai")


def _campaign(s: Session, merchant_id: str, sku_id: str, title: str) -> Campaign:
    now = utcnow()
    c = Campaign(merchant_id=merchant_id, sku_id=sku_id, title=title, kind="fixed",
                 tiers=[[2, 800]], min_size=2, max_size=5, starts_at=now - timedelta(days=3),
                 ends_at=now + timedelta(days=3), created_by="staff")  # fmt: skip
    s.add(c)
    s.flush()
    return c


def _order(
    s: Session, user: User, merchant_id: str, sku_id: str, cents: int, **kw: object
) -> Order:
    now = utcnow()
    o = Order(user_id=user.id, merchant_id=merchant_id, sku_id=sku_id, qty=1,
              unit_price_cents=cents, total_cents=cents, paid_cents=cents, paid_at=now,
              status="paid", created_at=now - timedelta(minutes=5), **kw)  # fmt: skip
    s.add(o)
    s.flush()
    return o


def seed(s: Session, world: ConsoleWorld) -> dict[str, str]:
    a, b = world.merchant_id, world.other_merchant_id
    station = create_station(s, id="st-rep-1", name="Lobby Rose", address="1 Rose Rd", lat=31.2,
                             lon=121.4)  # fmt: skip
    peaches = _campaign(s, a, world.sku_id, "Peach party")
    plums = _campaign(s, a, world.sku_id, "Plum week")
    theirs = _campaign(s, b, world.other_sku_id, "Their secret campaign")
    sale = FlashSale(merchant_id=a, sku_id=world.sku_id, title="Midnight melons", price_cents=500,
                     stock_cap=10, remaining=10, starts_at=utcnow() - timedelta(hours=1),
                     ends_at=utcnow() + timedelta(hours=1), created_by="staff")  # fmt: skip
    s.add(sale)
    g = Group(campaign_id=peaches.id, min_size=2, max_size=5, status="confirmed",
              deadline_at=utcnow() + timedelta(days=1))  # fmt: skip
    s.add(g)
    s.flush()
    shopper = world.shopper
    _order(s, shopper, a, world.sku_id, 1200, kind="group", group_id=g.id, station_id=station.id)
    _order(s, shopper, a, world.sku_id, 3400, kind="group", group_id=g.id, station_id=station.id)
    refunded = _order(s, shopper, a, world.sku_id, 999, station_id=station.id)
    refunded.refunded_cents = 999
    flash = _order(s, shopper, a, world.sku_id, 500, kind="flash")
    s.add(Reservation(sale_id=sale.id, user_id=shopper.id, request_id="r1", qty=1,
                      order_id=flash.id))  # fmt: skip
    _order(s, shopper, b, world.other_sku_id, 777_777)
    today = local_day(utcnow(), TZ)
    s.add(CampaignViews(merchant_id=a, day=today, campaign_id=peaches.id, views=40))
    s.add(CampaignViews(merchant_id=b, day=today, campaign_id=theirs.id, views=9_999))
    s.flush()
    rollup.refresh(s, TZ, overlap_s=0)
    return {"peaches": peaches.id, "plums": plums.id, "theirs": theirs.id, "sale": sale.id}


def test_dashboard_shows_the_merchants_own_numbers(
    console: ConsoleClient, db_session: Session
) -> None:
    ids = seed(db_session, console.world)
    r = console.get("/console/reports", headers={"Accept-Language": "en"})
    assert r.status_code == 200, r.text
    html = r.text
    # GMV 1200 + 3400 + 999 + 500; 4 orders; AOV 6099 / 4.
    assert "¥60.99" in html and "¥15.24" in html
    assert "Peach party" in html and "Midnight melons" in html and "Lobby Rose" in html
    assert "Group success rate" in html and "100.0%" in html  # one group, succeeded
    assert "25.0%" in html  # refund rate: 1 of 4 paid orders
    assert 'role="img"' in html and "<svg" in html
    # Nothing of the other merchant's.
    assert "7,777" not in html and "¥7777" not in html and "Their secret" not in html
    assert "9999" not in html and "9,999" not in html
    # Campaign against campaign, both the merchant's own.
    r = console.get(f"/console/reports?a={ids['peaches']}&b={ids['sale']}",
                    headers={"Accept-Language": "en"})  # fmt: skip
    assert r.status_code == 200
    assert r.text.count("Peach party") >= 3 and "GMV by day, campaign against campaign" in r.text


def test_dashboard_refuses_other_merchants_campaigns_and_bad_periods(
    console: ConsoleClient, db_session: Session
) -> None:
    ids = seed(db_session, console.world)
    assert console.get(f"/console/reports?a={ids['theirs']}").status_code == 404
    assert console.get("/console/reports?from=2026-12-05&to=2026-12-01").status_code == 422
    assert console.get("/console/reports?from=2024-01-01&to=2026-12-01").status_code == 422
    assert console.get("/console/reports?from=2026-02-30").status_code == 422
    assert console.get("/console/reports?from=yesterday").status_code == 422
    assert console.get("/console/reports?days=7").status_code == 200


def test_the_other_merchants_staff_sees_only_theirs(
    console_as: Callable[[User], ConsoleClient], console_world: ConsoleWorld, db_session: Session
) -> None:
    seed(db_session, console_world)
    other = console_as(console_world.other_staff)
    html = other.get("/console/reports", headers={"Accept-Language": "en"}).text
    assert "¥7777.77" in html and "Peach party" not in html and "Lobby Rose" not in html


def test_signed_out_and_shoppers_are_refused(
    console_as: Callable[[User], ConsoleClient], console_world: ConsoleWorld, client: object
) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    r = client.get("/console/reports", follow_redirects=False)
    assert r.status_code == 303 and "/console/signin" in r.headers["location"]
    shopper = console_as(console_world.shopper)
    assert shopper.get("/console/reports").status_code == 403


def test_dashboard_in_chinese(console: ConsoleClient, db_session: Session) -> None:
    seed(db_session, console.world)
    html = console.get("/console/reports", headers={"Accept-Language": "zh-CN"}).text
    assert "报表" in html and "客单价" in html and "复购率" in html
