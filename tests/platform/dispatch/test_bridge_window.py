"""The bridge's MQTT window: the broker hands it more unacknowledged messages than Mosquitto's
default of 20, so one inbound transaction can apply a whole burst of acks and events."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.lockers.services import CompartmentSpec

EVENTS = 60  # three times Mosquitto's default max_inflight_messages


def test_the_broker_hands_the_bridge_more_than_twenty_unacknowledged_messages(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        session.commit()
        locker_id = locker.id
    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge up")
    proto = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        wait_for(lambda: bridge.stats.statuses >= 1, what="the locker's status applied")
        before = bridge.stats.received
        with p.session() as blocker:
            # Applying events waits on this lock, so nothing the bridge receives meanwhile is
            # acknowledged: whatever reaches it came inside the broker's window for it (an
            # inbound worker may already hold some of them in the batch that waits).
            blocker.execute(text("LOCK TABLE applied_events IN EXCLUSIVE MODE"))
            for _ in range(EVENTS):
                proto.send_event(proto.event("door_opened", compartment="0-1"))
            wait_for(
                lambda: bridge.stats.received - before >= EVENTS,
                what="every event handed to the bridge before any was acknowledged",
            )
            assert bridge.stats.applied == 0
            blocker.rollback()
        wait_for(lambda: bridge.stats.applied == EVENTS, what="every event applied")
    finally:
        proto.close()
