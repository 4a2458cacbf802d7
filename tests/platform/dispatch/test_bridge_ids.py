"""Bridge client ids: shared bridges on one host never take over each other's session; the
durable bridge keeps one stable id, under which the broker keeps its session."""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.process import build_bridge
from tuanbox.lockers.services import CompartmentSpec

EVENTS = 40


def test_two_shared_bridges_on_one_host_without_client_ids_both_keep_their_connection(
    platform_for: Callable[..., Platform], mqtt_broker: tuple[str, int]
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        session.commit()
        locker_id = locker.id
    # As `tuanbox bridge --shared` twice on one machine: no --client-id.
    one = Bridge(p.settings, p.factory, p.ctx, durable=False)
    two = Bridge(p.settings, p.factory, p.ctx, durable=False)
    assert one.client_id != two.client_id
    assert one.client_id.startswith(f"tuanbox-bridge-{socket.gethostname()}-")
    proto = None
    try:
        for bridge in (one, two):
            bridge.start()
        wait_for(lambda: one.connected.is_set() and two.connected.is_set(), what="both up")
        proto = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
        for _ in range(EVENTS):
            proto.send_event(proto.event("door_opened", compartment="0-1"))
        applied = lambda: one.stats.applied + two.stats.applied  # noqa: E731
        wait_for(lambda: applied() == EVENTS, what="every event applied")
        # Neither was thrown off by the other: one connection each, both did part of the work.
        assert (one.stats.connects, two.stats.connects) == (1, 1)
        assert one.connected.is_set() and two.connected.is_set()
        assert one.stats.applied > 0 and two.stats.applied > 0
    finally:
        if proto is not None:
            proto.close()
        for bridge in (one, two):
            bridge.stop()


def test_the_durable_bridge_id_is_stable_across_restarts(
    platform_for: Callable[..., Platform], mqtt_broker: tuple[str, int]
) -> None:
    p = platform_for(mqtt_broker[1])
    first = build_bridge(p.settings, client_id=None, durable=True)
    again = build_bridge(p.settings, client_id=None, durable=True)
    assert first.client_id == again.client_id == f"tuanbox-bridge-{socket.gethostname()}"
    chosen = build_bridge(p.settings, client_id="bridge-a", durable=False)
    assert chosen.client_id == "bridge-a"
    for bridge in (first, again, chosen):
        bridge.session_factory.kw["bind"].dispose()
