"""The platform asks a locker for its state (sync): on reconnect, on a seq gap, on disagreement."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from edge.protocol.envelopes import CompartmentState
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_bridge_flow import seed_order
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import CompartmentSpec


def _syncs(p: Platform, reason: str) -> list[OutboxCommand]:
    """Syncs queued for one reason (their ref), oldest first."""
    with p.session() as session:
        return list(
            session.scalars(
                select(OutboxCommand)
                .where(OutboxCommand.type == "sync", OutboxCommand.ref == f"sync:{reason}")
                .order_by(OutboxCommand.created_at)
            )
        )


def _delivered(locker: ProtocolLocker, rows: list[OutboxCommand]) -> bool:
    sent = {c.id for c in locker.of_type("sync")}
    return bool(rows) and all(row.id in sent for row in rows)


def _connected(p: Platform, locker_id: str, port: int) -> ProtocolLocker:
    """A locker online, done with the sync its coming online brought: a sync on its way
    answers every later reason too, so the tests below wait for it to finish first."""
    locker = ProtocolLocker(locker_id, port).connect()
    reconnect = lambda: [r.status for r in _syncs(p, "reconnect")] == ["done"]  # noqa: E731
    wait_for(reconnect, what="the sync on connect done")
    return locker


def _handled(p: Platform, locker: ProtocolLocker) -> None:
    """Wait until everything this locker sent so far is handled: one client's messages reach
    one bridge in order, so once a marker event is applied, all before it were. (The bridge's
    counters would not do: every test's lockers share the machine's broker.)"""
    marker = locker.event("door_closed", compartment="0-1")
    locker.send_event(marker)

    def applied() -> bool:
        with p.session() as session:
            seqs = session.scalars(select(AppliedEvent.seq).where(AppliedEvent.seq == marker.seq))
            return seqs.first() is not None

    wait_for(applied, what=f"marker event {marker.seq}")


def _one_locker(p: Platform) -> str:
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        session.commit()
        return locker.id


def _state(compartment: str, *, item: bool) -> CompartmentState:
    return CompartmentState(compartment=compartment, door="closed", locked=True, item_present=item)


def test_reconnect_and_a_new_boot_bring_a_sync(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridges(p)
    first = _connected(p, locker_id, mqtt_broker[1])  # online: a sync, carried out
    try:
        assert _delivered(first, _syncs(p, "reconnect"))
        first.go_offline()
    finally:
        first.close()
    again = ProtocolLocker(locker_id, mqtt_broker[1]).connect()  # back, with a new boot id
    try:
        done = lambda: [r.status for r in _syncs(p, "reconnect")] == ["done", "done"]  # noqa: E731
        wait_for(done, what="a second sync, carried out")
        assert _delivered(again, _syncs(p, "reconnect")[1:])
    finally:
        again.close()


def test_back_online_by_an_event_before_its_status_brings_a_sync(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    """The platform may learn a locker is back from an event or an ack rather than from its
    "online" status (shared bridges: another bridge holds the status; a will of the same boot
    read late): the status then finds it online already, so the event must ask for the sync."""
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridges(p)
    locker = _connected(p, locker_id, mqtt_broker[1])
    try:
        locker.publish("status", locker._status("offline"))  # its will, as the bridge reads it

        def online() -> bool:
            with p.session() as session:
                row = session.get(Locker, locker_id)
                return row is not None and row.online

        wait_for(lambda: not online(), what="the locker marked offline")
        locker.send_event(locker.event("door_opened", compartment="0-1"))  # it is back
        wait_for(online, what="the locker marked online by its event")
        wait_for(lambda: len(_syncs(p, "reconnect")) == 2, what="a sync on its coming back")
        wait_for(lambda: _delivered(locker, _syncs(p, "reconnect")), what="the sync sent")
    finally:
        locker.close()


def test_a_seq_gap_brings_a_sync(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridge = bridges(p)
    locker = _connected(p, locker_id, mqtt_broker[1])
    try:
        for _ in range(2):
            locker.send_event(locker.event("door_opened", compartment="0-1"))
        wait_for(lambda: bridge.stats.applied == 2, what="seqs 1 and 2 applied")
        assert _syncs(p, "seq_gap") == []
        locker.seq += 2  # seqs 3 and 4 are lost (or late)
        locker.send_event(locker.event("door_opened", compartment="0-1"))
        wait_for(lambda: _delivered(locker, _syncs(p, "seq_gap")), what="a sync on the gap")
    finally:
        locker.close()


def test_an_item_in_a_compartment_with_nothing_booked_brings_a_sync_once(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id = _one_locker(p)
    bridges(p)
    locker = _connected(p, locker_id, mqtt_broker[1])
    try:
        locker.send_state([_state("0-1", item=False)])  # agrees: nothing to ask
        _handled(p, locker)
        assert _syncs(p, "state_mismatch") == []
        for _ in range(3):  # "occupied" with no parcel booked, reported three times
            locker.send_state([_state("0-1", item=True)])
        _handled(p, locker)
        wait_for(lambda: _delivered(locker, _syncs(p, "state_mismatch")), what="a sync")
        assert len(_syncs(p, "state_mismatch")) == 1  # no sync loop
        with p.session() as session:
            assert session.scalars(select(Compartment.flagged_mismatch)).one()
    finally:
        locker.close()


def test_an_empty_compartment_with_a_parcel_booked_brings_a_sync(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id, _ = seed_order(p)
    bridges(p)
    locker = _connected(p, locker_id, mqtt_broker[1])
    try:
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            label, ref = comp.label, booking.ref
        locker.send_event(locker.event("deposited", compartment=label, order_id=ref))
        locker.send_state([_state(label, item=True)])  # agrees: the parcel is in
        _handled(p, locker)
        assert _syncs(p, "state_mismatch") == []
        locker.send_state([_state(label, item=False)])  # "empty", a parcel booked in it
        wait_for(lambda: _delivered(locker, _syncs(p, "state_mismatch")), what="a sync")
        with p.session() as session:
            comp = session.get(Compartment, comp.id)
            # Usually the pickup event is still on its way: asked, not flagged.
            assert comp is not None and comp.state == "occupied" and not comp.flagged_mismatch
    finally:
        locker.close()
