"""Values at the edge of the contract: big seqs apply, impossible values are refused with a
reason (never lost silently), and a different event under an applied seq is reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from edge.protocol.envelopes import Event, Status, encode
from edge.protocol.topics import topic
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, InboundFailure
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import CompartmentSpec

BIG = 2**31  # no longer fits INTEGER


def _one_locker(p: Platform) -> str:
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        session.commit()
        return locker.id


def _raw_event(locker_id: str, seq: int, **payload: object) -> bytes:
    """An event as JSON, whatever its values (the envelope model would refuse some)."""
    body = {
        "locker_id": locker_id,
        "seq": seq,
        "type": "door_opened",
        "at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }
    return json.dumps(body).encode()


def _failures(p: Platform) -> list[InboundFailure]:
    with p.session() as session:
        return list(session.scalars(select(InboundFailure).order_by(InboundFailure.key)))


def _alerts(p: Platform, kind: str) -> list[OpsAlert]:
    with p.session() as session:
        return list(session.scalars(select(OpsAlert).where(OpsAlert.kind == kind)))


def test_big_seqs_apply_and_impossible_values_are_refused_with_their_reason(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge subscribed")  # events are not retained
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        locker.publish("evt", _raw_event(locker_id, BIG, compartment="0-1"))
        locker.publish("evt", _raw_event(locker_id, BIG + 1, compartment="0-1"))
        wait_for(lambda: bridge.stats.applied == 2, what="both big seqs applied")
        with p.session() as session:
            assert sorted(session.scalars(select(AppliedEvent.seq))) == [BIG, BIG + 1]
            row = session.get(Locker, locker_id)
            assert row is not None and row.last_event_seq == BIG + 1
            assert session.scalars(select(Compartment.wear_count)).one() == 2

        refused = {
            "seq": _raw_event(locker_id, 2**63, compartment="0-1"),
            "compartment": _raw_event(locker_id, BIG + 2, compartment="3000000000-1"),
            "agent_version": encode(
                Status(state="online", boot_id=locker.boot_id, at=datetime.now(UTC))
            ).replace(b'"agent_version":null', b'"agent_version":"' + b"v" * 65 + b'"'),
        }
        locker.publish("evt", refused["seq"])
        locker.publish("evt", refused["compartment"])
        locker.publish("status", refused["agent_version"])
        locker.publish("evt", refused["seq"])  # a redelivery adds no second record
        wait_for(lambda: bridge.stats.rejected_messages == 4, what="the refusals")
        letters = _failures(p)
        assert len(letters) == 3
        assert all(f.dead_lettered_at is not None and f.locker_id == locker_id for f in letters)
        by_payload = {bytes(f.payload): f for f in letters}
        seq = by_payload[refused["seq"]]
        assert seq.topic == topic(locker_id, "evt") and seq.attempts == 2
        assert seq.error.startswith("BAD_ENVELOPE:") and "seq" in seq.error
        comp = by_payload[refused["compartment"]]
        assert "BAD_ENVELOPE" in comp.error and "3000000000" in comp.error
        version = by_payload[refused["agent_version"]]
        assert "agent_version" in version.error and version.topic == topic(locker_id, "status")
        # Ops hear of it once while the alert is open, not once per message.
        alert = wait_for(lambda: _alerts(p, "inbound_rejected"), what="an alert")[0]
        assert len(_alerts(p, "inbound_rejected")) == 1
        assert alert.locker_id == locker_id and "BAD_ENVELOPE" in alert.detail
        assert alert.severity == "critical"  # an event was lost to the platform
        assert "inbound_failures" in alert.next_step
        assert bridge.stats.dead_letters == 0  # refused at once, not retried into a dead letter
    finally:
        locker.close()


def test_a_different_event_reusing_an_applied_seq_is_reported_not_dropped(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge subscribed")  # events are not retained
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        first = locker.event("door_opened", compartment="0-1")
        locker.send_event(first)
        locker.send_event(first)  # a plain redelivery: a duplicate, nothing to report
        wait_for(lambda: bridge.stats.duplicates == 1, what="the redelivery")
        other = Event(
            locker_id=locker_id,
            seq=first.seq,
            type="door_closed",
            at=datetime.now(UTC),
            payload={"compartment": "0-1", "item_present": True},
        )
        locker.send_event(other)
        locker.send_event(other)  # the same impostor again: no second alert
        wait_for(lambda: bridge.stats.reused_seqs == 2, what="the reused seq")
        alert = _alerts(p, "seq_reused")
        assert len(alert) == 1 and alert[0].severity == "critical"
        assert alert[0].locker_id == locker_id and f"seq {first.seq}" in alert[0].detail
        (letter,) = _failures(p)
        assert letter.payload == encode(other) and letter.dead_lettered_at is not None
        assert "SEQ_REUSED" in letter.error and letter.attempts == 2
        with p.session() as session:
            applied = session.scalars(select(AppliedEvent)).one()
            assert applied.type == "door_opened"  # the first one stands
            assert session.scalars(select(Compartment.wear_count)).one() == 1
    finally:
        locker.close()
