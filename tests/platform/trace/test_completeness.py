"""A real lot report from the API commits the lot's event list per window: dropping one event
makes verification fail with its own message."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.platform.factories import auth_header
from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from tests.traceability.conftest import Anvil
from traceability.lookup import RpcRootLookup
from traceability.report import load_report
from traceability.settings import TraceSettings
from traceability.verify import verify_report
from tuanbox.settings import Settings
from tuanbox.trace.services import run_anchoring


def test_real_report_missing_an_event_fails_verification(
    anvil: Anvil,
    trace_app: FastAPI,
    settings: Settings,
    shop: Shop,
    sessions: sessionmaker[Session],
    trace_settings: TraceSettings,
) -> None:
    client = TestClient(trace_app)
    for event in tf.journey_events():
        reply = client.post(
            "/api/v1/trace/events", json=event, headers=auth_header(settings, shop.staff)
        )
        assert reply.status_code == 201, reply.text
    run_anchoring(sessions, trace_settings.model_copy(update={"window_seconds": 0.001}))
    data = client.get(f"/api/v1/trace/{tf.GTIN}/{tf.LOT}").json()
    (commitment,) = data["lot_commitments"]
    assert commitment["count"] == 5 and commitment["root"] == data["anchors"][0]["root"]
    chain = RpcRootLookup(anvil.url)
    assert verify_report(load_report(data), chain).complete

    del data["events"][3]  # the locker step, quietly left out
    result = verify_report(load_report(data), chain)
    failure = result.first_failure
    assert failure is not None and failure.check == "completeness"
    assert failure.detail == (
        f"incomplete report: this window commits 5 events of lot {tf.GTIN}/{tf.LOT}, "
        "the report shows 4"
    )
