"""Console order pages over HTTP: tabs, filters, bulk actions, exports; scope and CSRF."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.console.conftest import ConsoleClient, ConsoleWorld
from tests.platform.factories import auth_header, make_user
from tests.platform.fulfilment.fx import make_station
from tests.platform.groupbuy.factories import pay
from tests.platform.merchant_orders.fx import T0, put_order, shopper_with_phone
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.catalog.models import Merchant, Sku
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import create_order
from tuanbox.settings import Settings

ZH = {"Accept-Language": "zh-CN"}


def _merchant(session: Session, world: ConsoleWorld) -> Merchant:
    merchant = session.get(Merchant, world.merchant_id)
    assert merchant is not None
    return merchant


def _awaiting(session: Session, settings: Settings, world: ConsoleWorld) -> Order:
    """A paid order of merchant A waiting for its acceptance (A accepts by hand)."""
    merchant = _merchant(session, world)
    merchant.order_acceptance = "manual"
    session.flush()
    sku = session.get(Sku, world.sku_id)
    assert sku is not None
    order = create_order(
        session, user_id=world.shopper.id, sku_id=sku.id, qty=1,
        unit_price_cents=sku.price_cents, station_id=make_station(session).id,
    )  # fmt: skip
    pay(session, settings, order.id)
    session.refresh(order)
    assert (order.status, order.awaiting) == ("paid", "merchant")
    return order


def test_orders_page_shows_tabs_counts_and_only_own_orders(
    console: ConsoleClient, db_session: Session, settings: Settings
) -> None:
    world = console.world
    merchant = _merchant(db_session, world)
    phone_user = shopper_with_phone(db_session, settings, "+8613800138000")
    mine = put_order(db_session, merchant, status="ready_for_pickup", user_id=phone_user)
    put_order(db_session, merchant, status="pending_payment")
    other = db_session.get(Merchant, world.other_merchant_id)
    assert other is not None
    theirs = put_order(db_session, other, status="ready_for_pickup")
    page = console.get("/console/orders", headers=ZH)
    assert page.status_code == 200, page.text
    assert "待付款" in page.text and "待自提" in page.text and "售后" in page.text
    assert mine.id[:8] in page.text and theirs.id[:8] not in page.text
    assert "138****8000" in page.text and "+8613800138000" not in page.text
    tab = console.get("/console/orders?tab=awaiting_pickup", headers=ZH)
    assert (
        mine.id[:8] in tab.text and 'aria-current="page">待自提 <span class="count">1' in tab.text
    )
    assert console.get("/console/orders?tab=nope").status_code == 422
    assert console.get("/console/orders?from=2026-13-01").status_code == 422


def test_the_next_page_link_walks_on(console: ConsoleClient, db_session: Session) -> None:
    merchant = _merchant(db_session, console.world)
    sku = db_session.get(Sku, console.world.sku_id)
    user = make_user(db_session).id
    orders = [
        put_order(db_session, merchant, sku=sku, user_id=user, at=T0.replace(minute=i))
        for i in range(51)
    ]
    first = console.get("/console/orders")
    assert orders[-1].id[:8] in first.text and orders[0].id[:8] not in first.text
    start = first.text.index('rel="next" href="') + len('rel="next" href="')
    link = first.text[start : first.text.index('"', start)].replace("&amp;", "&")
    second = console.get(link)
    assert second.status_code == 200 and orders[0].id[:8] in second.text
    assert 'rel="next"' not in second.text


def test_bulk_accept_form_is_idempotent_and_needs_csrf(
    console: ConsoleClient, db_session: Session, settings: Settings
) -> None:
    order = _awaiting(db_session, settings, console.world)
    page = console.get("/console/orders?tab=to_ship")
    assert f'value="{order.id}"' in page.text  # a checkbox for it
    form = {"action": "accept", "key": "k-0123456789", "order_ids": [order.id]}
    refused = console.post("/console/orders/bulk", data=form)
    assert refused.status_code == 403
    cross = console.post(
        "/console/orders/bulk", data={**form, "csrf": console.csrf},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert cross.status_code == 403
    db_session.refresh(order)
    assert order.status == "paid"

    done = console.post("/console/orders/bulk", data={**form, "csrf": console.csrf})
    assert done.status_code == 200, done.text
    assert 'data-outcome="done"' in done.text
    db_session.refresh(order)
    assert order.status == "confirmed"
    moves = db_session.scalar(select(func.count()).select_from(OrderTransition))
    again = console.post("/console/orders/bulk", data={**form, "csrf": console.csrf})
    assert again.status_code == 200 and 'data-outcome="done"' in again.text
    assert "没有重复执行" in again.text  # "nothing was done twice"
    assert db_session.scalar(select(func.count()).select_from(OrderTransition)) == moves


def test_another_merchants_staff_cannot_touch_or_see_the_orders(
    console: ConsoleClient,
    console_as: Callable[[User], ConsoleClient],
    db_session: Session,
    settings: Settings,
) -> None:
    order = _awaiting(db_session, settings, console.world)
    them = console_as(console.world.other_staff)
    assert order.id[:8] not in them.get("/console/orders").text
    answer = them.post(
        "/console/orders/bulk",
        data={"csrf": them.csrf, "action": "accept", "key": "k-theirs-0001",
              "order_ids": [order.id]},
    )  # fmt: skip
    assert answer.status_code == 200 and 'data-outcome="not_found"' in answer.text
    db_session.refresh(order)
    assert order.status == "paid"
    body = them.get(f"/console/orders.csv?q={order.id}").content.decode("utf-8-sig")
    assert order.id not in body
    shopper = console_as(console.world.shopper)
    assert shopper.get("/console/orders").status_code == 403


def test_signed_out_requests_are_refused(client: TestClient) -> None:
    assert client.get("/console/orders", follow_redirects=False).status_code == 303
    assert client.get("/console/orders.csv", follow_redirects=False).status_code == 303
    assert client.post("/console/orders/bulk", data={}).status_code == 401


def test_csv_and_xlsx_exports_parse_back(
    console: ConsoleClient, db_session: Session, settings: Settings
) -> None:
    merchant = _merchant(db_session, console.world)
    user = shopper_with_phone(db_session, settings, "+8613900139001")
    station = make_station(db_session)
    a = put_order(db_session, merchant, status="confirmed", user_id=user, station_id=station.id)
    put_order(db_session, merchant, status="confirmed", at=T0.replace(day=3))
    r = console.get(f"/console/orders.csv?tab=to_ship&station={station.id}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="orders-')
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["order_id"] for row in rows] == [a.id]
    assert rows[0]["phone"] == "139****9001" and rows[0]["station"] == station.name

    x = console.get("/console/orders.xlsx?from=2026-12-01&to=2026-12-01")
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content), read_only=True)["orders"]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "order_id" and [v[0] for v in values[1:]] == [a.id]


def test_an_admin_grant_reveals_phones_to_that_staff(
    console: ConsoleClient, client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = _merchant(db_session, console.world)
    put_order(
        db_session, merchant, user_id=shopper_with_phone(db_session, settings, "+8613800138000")
    )
    staff_id = console.world.staff.id
    url = f"/api/v1/staff/{staff_id}/pii-access"
    body = {"allowed": True, "reason": "after-sales lead"}
    staff_auth = auth_header(settings, console.world.staff)
    assert client.put(url, json=body, headers=staff_auth).status_code == 403
    admin = auth_header(settings, make_user(db_session, "admin"))
    r = client.put(url, json=body, headers=admin)
    assert r.status_code == 200 and r.json() == {"user_id": staff_id, "allowed": True,
                                                 "changed": True}  # fmt: skip
    assert client.put(url, json=body, headers=admin).json()["changed"] is False
    assert "+8613800138000" in console.get("/console/orders").text
    csv_body = console.get("/console/orders.csv").content.decode("utf-8-sig")
    assert "'+8613800138000" in csv_body
    them = client.put(
        f"/api/v1/staff/{console.world.shopper.id}/pii-access", json=body, headers=admin
    )
    assert them.status_code == 404
    client.put(url, json={"allowed": False, "reason": "left the team"}, headers=admin)
    assert "+8613800138000" not in console.get("/console/orders").text


def _pii_reads(session: Session, staff_id: str) -> list[AuditEntry]:
    query = (
        select(AuditEntry)
        .where(AuditEntry.action == "pii.read", AuditEntry.actor_id == staff_id)
        .order_by(AuditEntry.id)
    )
    return list(session.scalars(query.execution_options(populate_existing=True)))


def test_personal_data_shown_in_clear_is_an_audited_access(
    console: ConsoleClient, client: TestClient, db_session: Session, settings: Settings
) -> None:
    """Issue 10: access to personal data is audited. A staff member with the grant who opens
    the list or exports it leaves an entry (who, from where, which view and filter); one
    who sees only masked values leaves none."""
    merchant = _merchant(db_session, console.world)
    user = shopper_with_phone(db_session, settings, "+8613700137000")
    order = put_order(db_session, merchant, status="confirmed", user_id=user)
    staff = console.world.staff
    assert "137****7000" in console.get("/console/orders?tab=to_ship").text
    console.get("/console/orders.csv")
    assert _pii_reads(db_session, staff.id) == [], "masked values are no access to audit"

    admin = auth_header(settings, make_user(db_session, "admin"))
    grant = {"allowed": True, "reason": "after-sales lead"}
    assert client.put(f"/api/v1/staff/{staff.id}/pii-access", json=grant,
                      headers=admin).status_code == 200  # fmt: skip
    page = console.get("/console/orders?tab=to_ship&q=7000")
    assert page.status_code == 200 and "+8613700137000" in page.text
    assert console.get("/console/orders.csv?tab=to_ship").status_code == 200
    assert console.get("/console/orders.xlsx").status_code == 200
    reads = _pii_reads(db_session, staff.id)
    assert [e.details["view"] for e in reads] == ["orders", "orders.csv", "orders.xlsx"]
    first = reads[0]
    assert (first.actor_role, first.subject_type, first.subject_id) == (
        "merchant_staff", "merchant", merchant.id,
    )  # fmt: skip
    assert first.details["filter"] == "tab=to_ship&q=7000" and first.ip
    assert first.details["orders"] == [order.id]
    assert reads[1].details["filter"] == "tab=to_ship"
