"""The bridge's inbound workers: lockers split between workers, each locker's messages applied
in order, every event once, also when the bridge is SIGKILLed in the middle of a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from edge.protocol.envelopes import encode
from edge.protocol.token import private_key_to_b64
from edge.protocol.topics import topic
from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import CompartmentSpec

TUANBOX = str(Path(sys.executable).with_name("tuanbox"))
LOCKERS = 6
EVENTS = 25


def _lockers(p: Platform, n: int) -> list[str]:
    with p.session() as session:
        station = make_station(session).id
        ids = [make_locker(session, station, [CompartmentSpec(0, 1, "S")])[0].id for _ in range(n)]
        session.commit()
    return ids


def _applied(p: Platform) -> int:
    with p.session() as session:
        return int(session.scalar(select(func.count()).select_from(AppliedEvent)) or 0)


def _seq_gap_syncs(p: Platform) -> int:
    """Syncs asked for because a locker's events seemed to skip a seq: what applying one
    locker's events out of order would cause."""
    with p.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxCommand)
                .where(OutboxCommand.ref == "sync:seq_gap")
            )
            or 0
        )


def test_workers_split_the_lockers_and_apply_each_lockers_events_in_order_once(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1], bridge_inbound_workers=3)
    ids = _lockers(p, LOCKERS)
    bridge = bridges(p)
    assert len({bridge._worker_of(topic(locker_id, "evt")) for locker_id in ids}) > 1
    wait_for(bridge.connected.is_set, what="bridge up")
    lockers = [ProtocolLocker(locker_id, mqtt_broker[1]).connect() for locker_id in ids]
    try:
        wait_for(lambda: bridge.stats.statuses >= LOCKERS, what="the lockers' statuses applied")
        for _ in range(EVENTS):  # the lockers interleaved, every event delivered twice
            for locker in lockers:
                body = encode(locker.event("door_opened", compartment="0-1"))
                locker.publish("evt", body)
                locker.publish("evt", body)
        total = LOCKERS * EVENTS
        wait_for(
            lambda: bridge.stats.applied + bridge.stats.duplicates == 2 * total,
            30,
            what="every delivery handled",
        )
        assert (bridge.stats.applied, bridge.stats.duplicates) == (total, total)
        assert _applied(p) == total
        # Out of order, a later seq applied first would look like a gap and ask for a sync.
        assert _seq_gap_syncs(p) == 0
        with p.session() as session:
            assert set(session.scalars(select(Locker.last_event_seq))) == {EVENTS}
            assert set(session.scalars(select(Compartment.wear_count))) == {EVENTS}
    finally:
        for locker in lockers:
            locker.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker of our own: on the machine's, a durable bridge first receives every retained
    status and state other tests left behind."""
    b = PrivateBroker(tmp_path)
    b.start()
    yield b
    b.stop()


def test_a_bridge_killed_in_the_middle_of_a_batch_applies_each_event_once(
    platform_for: Callable[..., Platform], broker: PrivateBroker
) -> None:
    p = platform_for(broker.port)
    (locker_id,) = _lockers(p, 1)
    client_id = f"kill-bridge-{uuid.uuid4().hex[:6]}"
    settings = p.settings
    env = {
        **os.environ,
        "TUANBOX_ENV": "test",
        "TUANBOX_DATABASE_URL": settings.database_url,
        "TUANBOX_MQTT_PORT": str(broker.port),
        "TUANBOX_PICKUP_SIGNING_KEY": private_key_to_b64(p.ctx.signing_key),  # the test's key
        "TUANBOX_SECRET_KEY": settings.secret_key.get_secret_value(),
        "TUANBOX_PII_KEY": settings.pii_key.get_secret_value(),
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": "kill-test-webhook",
        "TUANBOX_LOG_FORMAT": "console",
        "TUANBOX_BRIDGE_INBOUND_WORKERS": "2",
    }

    def start() -> subprocess.Popen[bytes]:
        # Durable (the default): a persistent session, so the broker keeps what was not
        # acknowledged for the bridge that comes back under the same id.
        return subprocess.Popen([TUANBOX, "bridge", "--client-id", client_id], env=env)

    def waiting_on_our_lock() -> bool:
        with p.engine.connect() as conn:
            found = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query ILIKE '%applied_events%'"
                )
            )
            return bool(found)

    bridge = start()
    locker = ProtocolLocker(locker_id, broker.port).connect()
    try:

        def online() -> bool:
            with p.session() as session:
                return bool(session.scalar(select(Locker.online).where(Locker.id == locker_id)))

        wait_for(online, 90, "the bridge process applied the locker's status")
        first = [locker.event("door_opened", compartment="0-1") for _ in range(EVENTS)]
        for event in first:
            locker.send_event(event)
        wait_for(lambda: _applied(p) == EVENTS, 60, "the first events applied")
        with p.session() as blocker:
            # The bridge's next batch stops at its insert into applied_events, inside its
            # transaction: killed there, nothing of that batch may stay, and all of it (and
            # the copies of events applied before) comes back from the broker.
            blocker.execute(text("LOCK TABLE applied_events IN EXCLUSIVE MODE"))
            second = [locker.event("door_opened", compartment="0-1") for _ in range(EVENTS)]
            for event in second:
                locker.send_event(event)
                locker.send_event(event)  # a redelivery of the same event
            for event in first[:5]:
                locker.send_event(event)  # copies of events applied before the kill
            wait_for(waiting_on_our_lock, 60, "a batch of the bridge in progress")
            bridge.send_signal(signal.SIGKILL)
            bridge.wait(10)
            blocker.rollback()
        assert _applied(p) == EVENTS  # the killed batch left nothing behind
        bridge = start()
        wait_for(lambda: _applied(p) == 2 * EVENTS, 90, "the second events applied")
        # Each once: a last copy would still be applied after this one, whose events all
        # come after the copies in the locker's stream.
        marker = locker.event("door_closed", compartment="0-1")
        locker.send_event(marker)
        wait_for(lambda: _applied(p) == 2 * EVENTS + 1, 60, "the marker applied")
        with p.session() as session:
            assert session.scalar(select(Compartment.wear_count)) == 2 * EVENTS
            seqs = list(session.scalars(select(AppliedEvent.seq).order_by(AppliedEvent.seq)))
            assert seqs == list(range(1, 2 * EVENTS + 2))
        assert _seq_gap_syncs(p) == 0
    finally:
        locker.close()
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(20)
