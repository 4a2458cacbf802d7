"""Failure cases with a protocol-level locker: two bridges, offline lockers, contradicting state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from edge.protocol.envelopes import CompartmentState, SyncPayload, encode
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_bridge_flow import command_statuses, seed_order
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.fulfilment.models import FulfilmentOrder, OpsAlert
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec

EVENTS = 60


def test_two_bridges_apply_each_event_once(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        locker_id = locker.id
        session.commit()
    one, two = bridges(p, durable=False), bridges(p, durable=False)
    wait_for(lambda: one.connected.is_set() and two.connected.is_set(), what="bridges up")
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        for _ in range(EVENTS):
            body = encode(locker.event("door_opened", compartment="0-1"))
            locker.publish("evt", body)
            locker.publish("evt", body)  # every event delivered twice
        seen = lambda: sum(b.stats.applied + b.stats.duplicates for b in (one, two))  # noqa: E731
        wait_for(lambda: seen() == 2 * EVENTS, what="every delivery handled")
        assert one.stats.applied + two.stats.applied == EVENTS
        # The shared subscription splits the traffic: both bridges did part of the work.
        assert all(b.stats.applied + b.stats.duplicates > 0 for b in (one, two))
        with p.session() as session:
            assert session.scalar(select(func.count()).select_from(AppliedEvent)) == EVENTS
            comp = session.scalars(select(Compartment)).one()
            assert comp.wear_count == EVENTS
    finally:
        locker.close()


def test_locker_offline_for_an_hour_gets_unexpired_commands_and_expired_are_reported(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    # Commands go out only to lockers that are online, so an offline locker's commands wait in
    # the outbox; the bridge's clock runs an hour ahead instead of the test waiting an hour.
    p = platform_for(mqtt_broker[1])
    locker_id, order_id = seed_order(p)  # its assign has the default 6 h TTL
    issued = datetime.now(UTC)
    with p.session() as session:
        short = outbox.enqueue(
            session, locker_id, "sync", SyncPayload(), now=issued, ttl_s=1800, ref="ops:short"
        )
        long = outbox.enqueue(
            session, locker_id, "sync", SyncPayload(), now=issued, ttl_s=7200, ref="ops:long"
        )
        short_id, long_id = short.id, long.id
        session.commit()
    bridge = bridges(p, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    wait_for(lambda: bridge.stats.expired == 1, what="the 30-minute command expired")
    assert command_statuses(p)[f"sync:{short_id}"] == "expired"

    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()  # back online
    try:
        wait_for(lambda: len(locker.distinct_commands()) == 2, what="two queued commands")
        assert short_id not in locker.distinct_commands()
        assert long_id in locker.distinct_commands()
        wait_for(
            lambda: sorted(command_statuses(p).values()) == ["done", "done", "expired"],
            what="acks recorded",
        )
        with p.session() as session:
            alert = session.scalars(
                select(OpsAlert).where(OpsAlert.kind == "command_expired")
            ).one()
            assert short_id in alert.detail and alert.locker_id == locker_id
            fo = session.get(FulfilmentOrder, order_id)
            assert fo is not None and fo.state == "booked"  # its assign was delivered in time
    finally:
        locker.close()


def test_expired_assign_puts_the_order_in_the_exception_queue(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1], command_ttl_s=60)
    _, order_id = seed_order(p)
    bridges(p, clock=lambda: datetime.now(UTC) + timedelta(hours=1))

    def alerts() -> list[OpsAlert]:
        with p.session() as fresh:
            return list(fresh.scalars(select(OpsAlert)))

    wait_for(alerts, what="an alert")
    with p.session() as session:
        alert = session.scalars(select(OpsAlert)).one()
        assert alert.kind == "command_expired" and alert.order_id == order_id
        assert alert.severity == "critical" and "assign" in alert.detail
        fo = session.get(FulfilmentOrder, order_id)
        assert (
            fo is not None and fo.state == "exception" and "expired" in (fo.exception_reason or "")
        )


def test_unacked_command_is_retried_and_a_repeat_is_answered_once(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1], command_ack_timeout_s=0.2, command_retry_max_s=0.4)
    locker_id, _ = seed_order(p)
    bridge = bridges(p)
    locker = ProtocolLocker(locker_id, mqtt_broker[1], ack_mode="none").connect()
    try:
        assigns = lambda: [c for c in locker.commands if c.type == "assign"]  # noqa: E731
        wait_for(lambda: len(assigns()) >= 3, what="three deliveries of the assign")
        assert len({c.id for c in assigns()}) == 1  # the same command id every time
        locker.ack_mode = "done"
        wait_for(lambda: command_statuses(p).get(f"assign:{assigns()[0].id}") == "done",
                 what="acked at last")  # fmt: skip
        with p.session() as session:
            row = session.scalars(select(OutboxCommand).where(OutboxCommand.type == "assign")).one()
            assert row.attempts >= 3
        published = bridge.stats.published
        wait_for(lambda: bridge.tick() == 0, what="nothing left to publish")
        assert bridge.stats.published == published
    finally:
        locker.close()


def test_state_snapshot_contradicting_the_platform_is_flagged_not_overwritten(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id, _ = seed_order(p)  # 0-1 is reserved for the order, 0-2 is free
    bridges(p)
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        states = [
            CompartmentState(compartment="0-1", door="closed", locked=True, item_present=False),
            CompartmentState(compartment="0-2", door="closed", locked=True, item_present=True),
        ]
        locker.send_state(states)
        locker.send_state(states)  # the same snapshot again raises no second alert

        def flagged() -> list[Compartment]:
            with p.session() as session:
                return list(
                    session.scalars(select(Compartment).where(Compartment.flagged_mismatch))
                )

        comps = wait_for(flagged, what="a flagged compartment")
        assert [(c.lock, c.state) for c in comps] == [(2, "free")]  # flagged, state kept
        # One client's messages reach our one bridge in order: once this event is applied,
        # both snapshots before it have been handled.
        locker.send_event(locker.event("door_closed", compartment="0-2"))
        wait_for(lambda: _applied(p) == 1, what="the marker event")
        with p.session() as session:
            alerts = session.scalars(
                select(OpsAlert).where(OpsAlert.kind == "state_mismatch")
            ).all()
            assert len(alerts) == 1 and "0-2" in alerts[0].detail
    finally:
        locker.close()


def _applied(p: Platform) -> int:
    with p.session() as session:
        return int(session.scalar(select(func.count()).select_from(AppliedEvent)) or 0)
