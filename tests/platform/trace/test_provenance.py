"""Cold-chain excursions recorded as EPCIS sensor events in the affected lot's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tests.platform.factories import make_order, make_sku
from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from traceability.hashing import event_hash
from traceability.settings import TraceSettings
from tuanbox.coldchain.models import Episode
from tuanbox.trace.provenance import TraceProvenance, compartment_extension
from tuanbox.trace.services import report_for


def test_excursion_becomes_a_sensor_event_of_the_lot(
    db_session: Session, shop: Shop, trace_settings: TraceSettings
) -> None:
    sku = make_sku(db_session, product=shop.product)
    orders = [make_order(db_session, sku=sku), make_order(db_session, sku=sku)]
    raised = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
    episode = Episode(
        locker_id="SH-PD-0007",
        compartment="A03",
        zone="chilled",
        rule="chilled_above_12",
        detail="12.6 °C",
        started_at=raised - timedelta(minutes=4),
        raised_at=raised,
        peak_c=12.6,
    )
    db_session.add(episode)
    db_session.flush()

    records = TraceProvenance(trace_settings).excursion(db_session, episode, [o.id for o in orders])
    assert len(records) == 1  # both orders are of the same lot: one event for the lot
    assert records[0]["lot"] == [tf.GTIN, tf.LOT]
    assert sorted(records[0]["order_ids"]) == sorted(o.id for o in orders)

    report = report_for(db_session, tf.GTIN, tf.LOT, rpc_url=None)
    (item,) = report.events
    assert item.status == "pending" and item.event_hash == records[0]["event_hash"]
    assert item.event_hash == event_hash(item.event)
    reading = item.event["sensorElementList"][0]["sensorReport"][0]
    assert reading == {
        "type": "Temperature",
        "exception": "ALARM_CONDITION",
        "value": 12.6,
        "uom": "CEL",
    }
    assert item.event["readPoint"]["id"].endswith("/254/SH-PD-0007.A03")
    assert item.event["bizStep"] == "sensor_reporting"


def test_compartment_extension_is_a_valid_gln_extension() -> None:
    assert compartment_extension("SH-PD-0007", "A03") == "SH-PD-0007.A03"
    long = compartment_extension("locker/with spaces/and-a-very-long-id", "B12")
    assert len(long) <= 20 and long.endswith(".B12") and " " not in long
