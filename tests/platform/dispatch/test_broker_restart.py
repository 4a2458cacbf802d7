"""Broker restart in the middle of dispatch: nothing lost, nothing applied twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from edge.protocol.envelopes import SyncPayload, encode
from edge.protocol.topics import topic
from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec

COMMANDS = 40
EVENTS = 40


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    b.start()
    yield b
    b.stop()


def _enqueue(p: Platform, locker_id: str, n: int) -> list[str]:
    with p.session() as session:
        ids = [
            outbox.enqueue(
                session, locker_id, "sync", SyncPayload(), now=datetime.now(UTC), ttl_s=600
            ).id
            for _ in range(n)
        ]
        session.commit()
    return ids


def _done(p: Platform) -> int:
    """Ours done (not the sync the platform sends of itself when the locker comes online)."""
    with p.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxCommand)
                .where(OutboxCommand.status == "done", OutboxCommand.ref.is_(None))
            )
            or 0
        )


def _applied(p: Platform) -> int:
    with p.session() as session:
        return int(session.scalar(select(func.count()).select_from(AppliedEvent)) or 0)


def test_restart_mid_dispatch_loses_nothing_and_applies_nothing_twice(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    broker: PrivateBroker,
) -> None:
    p = platform_for(broker.port, command_ack_timeout_s=0.5, command_retry_max_s=1.0)
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        locker_id = locker.id
        session.commit()
    bridge = bridges(p, durable=True)
    wait_for(bridge.connected.is_set, what="bridge connected")
    locker = ProtocolLocker(locker_id, broker.port).connect()
    try:
        first = _enqueue(p, locker_id, COMMANDS // 2)
        events = [locker.event("door_opened", compartment="0-1") for _ in range(EVENTS)]
        for event in events[: EVENTS // 2]:
            locker.client.publish(topic(locker_id, "evt"), encode(event), qos=1)
        wait_for(lambda: _done(p) >= 1, what="dispatch under way")

        broker.restart()  # SIGTERM, then the same port again; clients reconnect by themselves

        second = _enqueue(p, locker_id, COMMANDS - len(first))
        for event in events[EVENTS // 2 :]:
            locker.client.publish(topic(locker_id, "evt"), encode(event), qos=1)
        # Resend a few from before the restart, as a locker unsure of its PUBACKs would.
        for event in events[:5]:
            locker.client.publish(topic(locker_id, "evt"), encode(event), qos=1)

        wait_for(lambda: _done(p) == COMMANDS, timeout=60, what="every command acked")
        wait_for(lambda: _applied(p) == EVENTS, timeout=60, what="every event applied")
        assert locker.distinct_commands() >= set(first) | set(second)
        with p.session() as session:
            comp = session.scalars(select(Compartment)).one()
            assert comp.wear_count == EVENTS  # each door_opened counted exactly once
        assert bridge.stats.applied == EVENTS
        assert bridge.stats.connects >= 2
    finally:
        locker.close()
