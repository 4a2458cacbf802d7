"""Trace feature through the API and the real chain: capture, anchoring, reports, pages, QR."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import auth_header, make_merchant, make_product, make_user
from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from tests.traceability.conftest import Anvil
from traceability.lookup import RpcRootLookup
from traceability.report import load_report
from traceability.settings import TraceSettings
from traceability.verify import verify_report
from tuanbox.accounts.models import Role
from tuanbox.settings import Settings
from tuanbox.trace.models import AppendOnlyError, TraceEvent, TraceWindow
from tuanbox.trace.services import run_anchoring


@pytest.fixture
def client(trace_app: FastAPI) -> TestClient:
    return TestClient(trace_app)


def _post_journey(client: TestClient, settings: Settings, shop: Shop) -> list[dict]:
    created = []
    for event in tf.journey_events():
        reply = client.post(
            "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
        )
        assert reply.status_code == 201, reply.text
        created.append(reply.json())
    return created


def test_trace_tables_migrated(db_session: Session) -> None:
    tables = set(inspect(db_session.connection()).get_table_names())
    assert {"trace_events", "trace_event_lots", "trace_windows", "trace_window_leaves"} <= tables


def test_capture_anchor_report_verify(
    client: TestClient,
    settings: Settings,
    shop: Shop,
    sessions: sessionmaker[Session],
    trace_settings: TraceSettings,
    anvil: Anvil,
) -> None:
    created = _post_journey(client, settings, shop)
    assert created[0]["lots"] == [f"{tf.GTIN}/{tf.LOT}"]
    again = client.post(
        "/api/v1/trace/events",
        json=tf.journey_events()[0],
        headers=auth_header(settings, shop.staff),
    )
    assert again.status_code == 200 and again.json()["id"] == created[0]["id"]

    report = client.get(f"/api/v1/trace/{tf.GTIN}/{tf.LOT}").json()
    assert [e["status"] for e in report["events"]] == ["pending"] * 5

    summary = run_anchoring(sessions, trace_settings.model_copy(update={"window_seconds": 0.001}))
    assert len(summary.anchored) == 1 and not summary.failed

    report = client.get(f"/api/v1/trace/{tf.GTIN}/{tf.LOT}").json()
    assert [e["status"] for e in report["events"]] == ["anchored"] * 5
    assert report["anchors"][0]["contract"] == trace_settings.contract_address
    assert report["rpc_url"] == trace_settings.rpc_url
    result = verify_report(load_report(report), RpcRootLookup(anvil.url))
    assert result.complete, result.first_failure


def test_failed_anchoring_is_kept_and_retried(
    client: TestClient,
    settings: Settings,
    shop: Shop,
    sessions: sessionmaker[Session],
    trace_settings: TraceSettings,
    db_session: Session,
) -> None:
    _post_journey(client, settings, shop)
    down = trace_settings.model_copy(
        update={"window_seconds": 0.001, "rpc_url": "http://127.0.0.1:9", "rpc_timeout_seconds": 1}
    )
    from traceability.chain import ChainClient

    # A chain client whose RPC is down: the window is cut and kept, the error recorded.
    broken = ChainClient(down)
    summary = run_anchoring(sessions, down, anchorer=broken)
    assert summary.windows_cut and summary.failed
    window = db_session.scalar(select(TraceWindow))
    assert window is not None and window.anchored_at is None and window.attempts == 1
    assert window.last_error and window.last_error.startswith("chain_unavailable")
    summary = run_anchoring(sessions, trace_settings)
    assert summary.anchored == [window.id] and summary.windows_cut == []
    db_session.refresh(window)
    assert window.anchored_at is not None and window.tx_hash


def test_bad_event_gets_422_naming_the_field(
    client: TestClient, settings: Settings, shop: Shop
) -> None:
    event = tf.journey_events()[1]
    event["bizStep"] = "teleporting"
    reply = client.post(
        "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
    )
    assert reply.status_code == 422
    problem = reply.json()
    assert problem["code"] == "INVALID_EVENT" and problem["field"] == "bizStep"
    assert reply.headers["content-type"].startswith("application/problem+json")

    event = tf.journey_events()[0]
    event["quantityList"][0]["epcClass"] = "https://id.gs1.org/01/06901234567893/10/PEACH-2611"
    reply = client.post(
        "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
    )
    assert reply.status_code == 422 and reply.json()["field"] == "quantityList[0].epcClass"


def test_merchants_write_only_their_own_lots(
    client: TestClient, settings: Settings, shop: Shop, db_session: Session
) -> None:
    other = make_merchant(db_session)
    make_product(db_session, other)
    stranger = make_user(db_session, Role.MERCHANT_STAFF, other.id)
    reply = client.post(
        "/api/v1/trace/events", json=tf.journey_events()[0], headers=auth_header(settings, stranger)
    )
    assert reply.status_code == 403
    event = tf.journey_events()[0]
    event["quantityList"][0]["epcClass"] = "https://id.gs1.org/01/06901234567892/10/NO-SUCH-LOT"
    reply = client.post(
        "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
    )
    assert reply.status_code == 404 and reply.json()["code"] == "LOT_NOT_FOUND"
    shopper = make_user(db_session, Role.SHOPPER)
    reply = client.post("/api/v1/trace/events", json=event, headers=auth_header(settings, shopper))
    assert reply.status_code == 403


def test_digital_link_serves_json_or_the_consumer_page(
    client: TestClient,
    settings: Settings,
    shop: Shop,
    sessions: sessionmaker[Session],
    trace_settings: TraceSettings,
) -> None:
    _post_journey(client, settings, shop)
    run_anchoring(sessions, trace_settings.model_copy(update={"window_seconds": 0.001}))
    as_json = client.get(f"/01/{tf.GTIN}/10/{tf.LOT}", headers={"Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.json()["lot"] == tf.LOT
    page = client.get(f"/01/{tf.GTIN}/10/{tf.LOT}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for text in (
        "Fenghua Honey Peach Cooperative",
        "已核验",
        "Harvested",
        "In the pickup locker",
        "Picked up",
        "2.1 °C",
        "4.6 °C",
        "3.4 °C",
        "Verify now",
        "0xbd4390ad",
    ):
        assert text in html, text
    embedded = html.split('id="report">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["events"][0]["leaf"].startswith("ni:///sha-256;")
    assert client.get("/01/06901234567892/10/UNKNOWN").status_code == 404
    assert client.get("/01/06901234567893/10/X").status_code == 400


def test_product_qr_for_the_merchant(
    client: TestClient, settings: Settings, shop: Shop, db_session: Session
) -> None:
    png = client.get(
        f"/api/v1/trace/{tf.GTIN}/{tf.LOT}/qr.png", headers=auth_header(settings, shop.staff)
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = client.get(
        f"/api/v1/trace/{tf.GTIN}/{tf.LOT}/qr.svg", headers=auth_header(settings, shop.staff)
    )
    assert svg.status_code == 200 and "<svg" in svg.text
    other = make_user(db_session, Role.MERCHANT_STAFF, make_merchant(db_session).id)
    denied = client.get(
        f"/api/v1/trace/{tf.GTIN}/{tf.LOT}/qr.png", headers=auth_header(settings, other)
    )
    assert denied.status_code == 403


def test_stored_events_are_append_only(
    client: TestClient, settings: Settings, shop: Shop, db_session: Session
) -> None:
    _post_journey(client, settings, shop)
    row = db_session.scalars(select(TraceEvent)).first()
    assert row is not None
    row.biz_step = "shipping"
    with pytest.raises(AppendOnlyError):
        db_session.flush()
    db_session.rollback()


def test_overlapping_window_is_refused_by_the_database(
    client: TestClient, settings: Settings, shop: Shop, sessions: sessionmaker[Session]
) -> None:
    from traceability.anchoring import build_window
    from traceability.errors import WindowConflictError
    from tuanbox.trace.repository import SqlAnchorRepository

    _post_journey(client, settings, shop)
    repo = SqlAnchorRepository(sessions)
    pending = repo.pending(10)
    repo.add_window(build_window("w-first", tf.NOW, pending[:3]))
    with pytest.raises(WindowConflictError):
        repo.add_window(build_window("w-second", tf.NOW, pending[2:]))
    assert [p.event_id for p in repo.pending(10)] == [p.event_id for p in pending[3:]]
