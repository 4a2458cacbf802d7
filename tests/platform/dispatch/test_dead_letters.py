"""Inbound messages that keep failing become dead letters instead of stalling the bridge."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Event, encode
from edge.protocol.topics import topic
from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge, is_transient, message_identity
from tuanbox.dispatch.models import AppliedEvent, InboundFailure
from tuanbox.fulfilment import inbound
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec

POISON_SEQ = 7


@pytest.fixture
def one_slot_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    # One in-flight message per client: a single unacknowledged message would stop every
    # later one from reaching the bridge, so the poison case cannot pass by luck.
    b = PrivateBroker(tmp_path, "allow_anonymous true\nmax_inflight_messages 1\n")
    b.start()
    yield b
    b.stop()


def _seed_locker(p: Platform) -> str:
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        session.commit()
        return locker.id


def _failing_apply(
    monkeypatch: pytest.MonkeyPatch, fail: Callable[[Event, int], Exception | None]
) -> Counter[int]:
    """Wrap inbound.apply_event; ``fail(event, call_number)`` returns the error to raise."""
    calls: Counter[int] = Counter()
    real = inbound.apply_event

    def apply_event(session: Session, event: Event, **kwargs: Any) -> Any:
        calls[event.seq] += 1
        error = fail(event, calls[event.seq])
        if error is not None:
            raise error
        return real(session, event, **kwargs)

    monkeypatch.setattr(inbound, "apply_event", apply_event)
    return calls


def _applied_seqs(p: Platform) -> list[int]:
    with p.session() as session:
        return sorted(session.scalars(select(AppliedEvent.seq)))


def test_poison_event_is_dead_lettered_and_later_events_still_flow(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    one_slot_broker: PrivateBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _failing_apply(
        monkeypatch,
        lambda event, _n: RuntimeError("no rule for this") if event.seq == POISON_SEQ else None,
    )
    # The bridge (MQTT 5) sets its own window as its Receive Maximum: one slot here as well.
    p = platform_for(one_slot_broker.port, bridge_mqtt_inflight=1)
    locker_id = _seed_locker(p)
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge up")
    locker = ProtocolLocker(locker_id, one_slot_broker.port).connect()
    try:
        bodies = {}
        for _ in range(30):
            event = locker.event("door_opened", compartment="0-1")
            bodies[event.seq] = encode(event)
            locker.send_event(event)
        wait_for(lambda: len(_applied_seqs(p)) == 29, what="every event but the poison applied")
        for _ in range(20):
            locker.send_event(locker.event("door_opened", compartment="0-1"))
        expected = [seq for seq in range(1, 51) if seq != POISON_SEQ]
        wait_for(lambda: _applied_seqs(p) == expected, what="the 20 later events applied")
        # The bridge counts an event after its transaction commits: the rows can be seen first.
        wait_for(lambda: bridge.stats.applied == 49, what="the bridge to count all 49")

        assert bridge.stats.applied == 49 and bridge.stats.duplicates == 0
        assert bridge.stats.dead_letters == 1
        assert calls[POISON_SEQ] >= p.settings.bridge_max_apply_attempts
        with p.session() as session:
            letter = session.scalars(select(InboundFailure)).one()
            assert letter.key == f"evt:{locker_id}:{POISON_SEQ}"
            assert letter.topic == topic(locker_id, "evt") and letter.locker_id == locker_id
            assert letter.payload == bodies[POISON_SEQ]
            assert "RuntimeError: no rule for this" in letter.error
            assert letter.attempts == p.settings.bridge_max_apply_attempts == 5
            assert letter.dead_lettered_at is not None
            assert letter.first_failed_at <= letter.last_failed_at <= letter.dead_lettered_at
            alert = session.scalars(select(OpsAlert)).one()
            assert alert.kind == "inbound_dead_letter" and alert.severity == "critical"
            assert alert.locker_id == locker_id and f"{POISON_SEQ}" in alert.detail
            assert "no rule for this" in alert.detail and "inbound_failures" in alert.next_step
            comp = session.scalars(select(Compartment)).one()
            assert comp.wear_count == 49
    finally:
        locker.close()


def test_transient_failure_is_retried_and_not_dead_lettered(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(event: Event, n: int) -> Exception | None:
        if event.seq == 3 and n <= 2:
            return sa_exc.OperationalError("SELECT 1", {}, Exception("server closed connection"))
        return None

    calls = _failing_apply(monkeypatch, fail)
    # One attempt would be enough to dead-letter, if transient failures counted.
    p = platform_for(mqtt_broker[1], bridge_max_apply_attempts=1)
    locker_id = _seed_locker(p)
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge up")
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        for _ in range(5):
            locker.send_event(locker.event("door_opened", compartment="0-1"))
        wait_for(lambda: _applied_seqs(p) == [1, 2, 3, 4, 5], what="all five applied")
        assert calls[3] == 3  # two transient failures, then applied
        assert bridge.stats.applied == 5 and bridge.stats.dead_letters == 0
        with p.session() as session:
            assert session.scalars(select(InboundFailure)).all() == []
            assert session.scalars(select(OpsAlert)).all() == []
            assert session.scalars(select(Compartment)).one().wear_count == 5
    finally:
        locker.close()


def _message(topic_name: str, payload: bytes) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=topic_name.encode())
    msg.payload = payload
    return msg


def test_message_identity_keys_events_by_locker_and_seq_and_others_by_payload_hash() -> None:
    event = Event(
        locker_id="L1", seq=9, type="door_opened", at=datetime(2026, 1, 1, tzinfo=UTC), payload={}
    )
    first = _message(topic("L1", "evt"), encode(event))
    again = _message(topic("L1", "evt"), encode(event.model_copy(update={"type": "door_closed"})))
    assert message_identity(first) == ("evt:L1:9", "L1") == message_identity(again)
    state_a = message_identity(_message(topic("L1", "state"), b'{"a": 1}'))
    state_b = message_identity(_message(topic("L1", "state"), b'{"a": 2}'))
    assert state_a[0].startswith(topic("L1", "state") + "#") and state_a[1] == "L1"
    assert state_a != state_b
    assert message_identity(_message("elsewhere/x", b"x"))[1] is None


def test_only_connection_level_errors_are_transient() -> None:
    assert is_transient(sa_exc.OperationalError("SELECT 1", {}, Exception("gone")))
    assert is_transient(psycopg.OperationalError("gone"))
    invalidated = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(invalidated)
    assert not is_transient(sa_exc.IntegrityError("INSERT", {}, Exception("dup")))
    assert not is_transient(RuntimeError("bug"))
