"""The bridge publishes a committed command at once (LISTEN/NOTIFY), not at its next poll, and
goes on publishing when its LISTEN connection is killed."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from edge.protocol.envelopes import SyncPayload
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.listen import APPLICATION_NAME
from tuanbox.lockers.models import Locker
from tuanbox.lockers.services import CompartmentSpec

# Far longer than any deadline below: a command that arrives came by notification.
POLL_S = 30.0
DEADLINE_S = 10.0


def online_locker(p: Platform, port: int) -> ProtocolLocker:
    with session_scope(p.factory) as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, [CompartmentSpec(0, 1, "S")])
    client = ProtocolLocker(locker.id, port).connect()

    def online() -> bool:
        with p.session() as session:
            row = session.get(Locker, locker.id)
            return row is not None and row.online

    wait_for(online, DEADLINE_S, "locker online")
    return client


def send_sync(p: Platform, locker_id: str) -> str:
    with session_scope(p.factory) as session:
        row = outbox.enqueue(
            session, locker_id, "sync", SyncPayload(), now=utcnow(), ttl_s=600, ref="notify-test"
        )
        return row.id


def listen_backends(p: Platform) -> list[int]:
    with p.engine.connect() as conn:
        pids = conn.scalars(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = :app AND datname = current_database()"
            ),
            {"app": APPLICATION_NAME},
        )
        return list(pids)


def test_a_committed_command_is_published_before_the_next_poll(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    bridges(p, poll_s=POLL_S)
    locker = online_locker(p, mqtt_broker[1])
    try:
        for _ in range(3):  # each one after the bridge has gone back to sleep
            command_id = send_sync(p, locker.locker_id)

            def arrived(cid: str = command_id) -> bool:
                return cid in locker.distinct_commands()

            wait_for(arrived, DEADLINE_S, "the command at the locker")
    finally:
        locker.close()


def test_commands_still_go_out_when_the_listen_connection_is_killed(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    bridge = bridges(p, poll_s=POLL_S)
    locker = online_locker(p, mqtt_broker[1])
    assert bridge.listener is not None
    listener = bridge.listener
    try:
        wait_for(listener.listening.is_set, DEADLINE_S, "bridge listening")
        pid = listener.backend_pid()
        assert pid is not None and pid in listen_backends(p)
        with p.engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # Committed while the notification may reach nobody: fast polling while the
        # connection is down, or the wake after reconnecting, must still send it.
        lost = send_sync(p, locker.locker_id)
        wait_for(lambda: lost in locker.distinct_commands(), DEADLINE_S, "command sent anyway")
        wait_for(lambda: listener.connects >= 2, DEADLINE_S, "LISTEN reconnected")
        wait_for(listener.listening.is_set, DEADLINE_S, "listening again")
        assert pid not in listen_backends(p)
        after = send_sync(p, locker.locker_id)
        wait_for(lambda: after in locker.distinct_commands(), DEADLINE_S, "notified again")
    finally:
        locker.close()
