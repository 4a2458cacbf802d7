"""A held parcel taken before the revoke reached the locker: the fact is recorded, ops decide."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Event
from telemetry.settings import TelemetrySettings
from tests.platform.coldchain.fx import Site, make_site, run_scans, write_through_edge
from tuanbox.audit.services import Actor
from tuanbox.coldchain import holds
from tuanbox.coldchain.models import QualityHold
from tuanbox.fulfilment import inbound, lifecycle
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Compartment
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.settings import Settings

OPS = Actor(id="ops-1", role="ops")


def _held_then_picked_up(
    session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path, t0: datetime,
) -> tuple[Site, QualityHold]:  # fmt: skip
    site = make_site(session, settings)
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, t0, 80)
    run_scans(session, telemetry, t0, range(10, 81, 10))
    hold = session.scalars(select(QualityHold)).one()
    assert session.get(Order, site.failing.id).status == "quality_hold"  # type: ignore[union-attr]

    # The locker had not received the revoke yet: the shopper's QR still opened the door.
    event = Event(locker_id=site.locker_id, seq=900, type="picked_up", at=datetime.now(UTC),
                  payload={"compartment": "0-1", "order_id": site.bookings["0-1"].ref})  # fmt: skip
    ctx = lifecycle.Context(settings=settings, signing_key=Ed25519PrivateKey.generate())
    assert inbound.apply_event(session, event, ctx=ctx, now=datetime.now(UTC)) == "applied"
    session.commit()
    return site, hold


def test_the_pickup_is_recorded_and_ops_are_told(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path, t0: datetime,
) -> None:  # fmt: skip
    site, _hold = _held_then_picked_up(db_session, settings, telemetry, influx_url, tmp_path, t0)
    order = db_session.get(Order, site.failing.id)
    assert order is not None
    db_session.refresh(order)
    assert order.status == "picked_up"  # not completed: the hold decision is still open
    comp = db_session.get(Compartment, site.bookings["0-1"].compartment_id)
    assert comp is not None
    assert comp.state == "free"
    alert = db_session.scalars(
        select(OpsAlert).where(OpsAlert.kind == "held_order_picked_up")
    ).one()
    assert alert.order_id == order.id
    assert alert.next_step


@pytest.mark.parametrize(("decision", "refunded"), [("release", False), ("reject", True)])
def test_ops_still_decide_the_hold_after_the_pickup(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path, t0: datetime, decision: str, refunded: bool,
) -> None:  # fmt: skip
    site, hold = _held_then_picked_up(db_session, settings, telemetry, influx_url, tmp_path, t0)
    if decision == "release":
        holds.release(db_session, hold.id, OPS, "probe checked", settings=settings)
    else:
        holds.reject(db_session, hold.id, OPS, "spoilt")
    order = db_session.get(Order, site.failing.id)
    assert order is not None
    db_session.refresh(order)
    assert order.status == "completed"
    refunds = db_session.scalars(select(Refund).where(Refund.order_id == order.id)).all()
    assert [r.amount_cents for r in refunds] == ([order.paid_cents] if refunded else [])
