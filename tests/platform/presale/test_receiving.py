"""Pre-sale orders are confirmed when their batch is received at the station hub (EPCIS)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_user
from tests.platform.fulfilment.fx import make_station
from tests.platform.groupbuy.factories import auth
from tests.platform.presale.fx import GTIN, LOT, succeeded_group
from traceability.settings import TraceSettings
from tuanbox.audit.models import AuditEntry
from tuanbox.orders.models import Order
from tuanbox.settings import Settings
from tuanbox.trace.models import TraceEvent, TraceEventLot


def _orders(session: Session, ids: list[str]) -> list[Order]:
    found = [session.get(Order, i) for i in ids]
    for order in found:
        assert order is not None
        session.refresh(order)
    return [o for o in found if o]


def test_receiving_at_the_hub_records_the_event_and_confirms_the_orders(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    station = make_station(db_session)
    closed = succeeded_group(db_session, settings, station.id, presale=True)
    orders = _orders(db_session, closed.order_ids)
    assert {(o.status, o.awaiting) for o in orders} == {("paid", "receiving")}

    # The batch is bought for them now: the shopper can no longer back out alone.
    shopper = {"Authorization": auth(settings, orders[0].user_id)["Authorization"]}
    r = client.post(f"/api/v1/orders/{orders[0].id}/cancel", json={}, headers=shopper)
    assert r.status_code == 409, r.text

    staff = auth(settings, closed.staff_id, "merchant_staff", closed.merchant_id)
    po = client.get(f"/api/v1/campaigns/{closed.campaign_id}/purchase-order", headers=staff)
    assert po.status_code == 200 and po.json()["total_qty"] == 2, po.text

    url = f"/api/v1/campaigns/{closed.campaign_id}/receipts"
    body = {"station_id": station.id, "qty": 2, "from_gln": "6901234000016"}
    r = client.post(url, json=body, headers=staff)
    assert r.status_code == 403, "the hub receives, not the merchant"
    ops = auth_header(settings, make_user(db_session, "ops"))
    r = client.post(url, json={**body, "qty": 1}, headers=ops)
    assert r.status_code == 409 and r.json()["code"] == "PRESALE_SHORT_DELIVERY", r.text
    assert r.json()["owed"] == 2

    r = client.post(url, json=body, headers=ops)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert sorted(receipt["confirmed_order_ids"]) == sorted(closed.order_ids)
    assert not receipt["replayed"] and receipt["event_hash"].startswith("ni:///sha-256;")
    for order in _orders(db_session, closed.order_ids):
        assert (order.status, order.awaiting) == ("confirmed", None) and order.wave_id

    event = db_session.get(TraceEvent, receipt["trace_event_id"])
    assert event is not None and event.biz_step == "receiving"
    hub = f"https://id.gs1.org/414/{TraceSettings().operator_gln}/254/st.{station.id}"
    assert event.body["disposition"] == "in_progress"
    assert event.body["readPoint"]["id"] == hub and event.body["bizLocation"]["id"] == hub
    assert event.body["quantityList"][0]["quantity"] == 2
    lots = db_session.scalars(select(TraceEventLot).where(TraceEventLot.event_id == event.id)).all()
    assert [(lot.gtin, lot.lot_code) for lot in lots] == [(GTIN, LOT)]
    assert db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "presale.received")
    ).one()

    again = client.post(url, json=body, headers=ops)
    assert again.status_code == 200 and again.json()["replayed"], again.text
    assert again.json()["id"] == receipt["id"] and again.json()["confirmed_order_ids"] == []
    count = db_session.scalars(select(TraceEvent).where(TraceEvent.biz_step == "receiving")).all()
    assert len(count) == 1, "receiving twice records one event"


def test_group_orders_of_a_regular_campaign_are_confirmed_at_close(
    db_session: Session, settings: Settings
) -> None:
    station = make_station(db_session)
    closed = succeeded_group(db_session, settings, station.id, presale=False)
    for order in _orders(db_session, closed.order_ids):
        assert (order.status, order.awaiting) == ("confirmed", None) and order.wave_id


def test_bad_receipts_are_4xx(client: TestClient, db_session: Session, settings: Settings) -> None:
    station = make_station(db_session)
    ops = auth_header(settings, make_user(db_session, "ops"))
    untraced = succeeded_group(db_session, settings, station.id, presale=True, gtin=None)
    url = f"/api/v1/campaigns/{untraced.campaign_id}/receipts"
    r = client.post(url, json={"station_id": station.id, "qty": 5}, headers=ops)
    assert r.status_code == 409 and r.json()["code"] == "PRESALE_BATCH_UNTRACEABLE", r.text
    regular = succeeded_group(db_session, settings, station.id, presale=False)
    r = client.post(
        f"/api/v1/campaigns/{regular.campaign_id}/receipts",
        json={"station_id": station.id, "qty": 5},
        headers=ops,
    )
    assert r.status_code == 409 and r.json()["code"] == "NOT_PRESALE"
    for body in (
        {"station_id": "st-elsewhere", "qty": 5},
        {"station_id": station.id, "qty": 2**63},
        {"station_id": station.id, "qty": 0},
        {"station_id": station.id, "qty": 5, "from_gln": "6901234000017"},
        {"station_id": "st\x00", "qty": 5},
    ):
        r = client.post(url, json=body, headers=ops)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    r = client.post(
        "/api/v1/campaigns/nope/receipts", json={"station_id": station.id, "qty": 1}, headers=ops
    )
    assert r.status_code == 404
