"""Drills on dispatch: Mosquitto restarted, and the bridge killed with SIGKILL, mid-batch."""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from edge.protocol.envelopes import encode
from edge.protocol.topics import topic
from tests.drills.support import Drill
from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_broker_restart import _applied, _done, _enqueue
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.dispatch.process import run_bridge
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec

LOCKERS = 3
COMMANDS = 30  # per locker
EVENTS = 30  # per locker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


def _lockers(p: Platform) -> list[str]:
    with p.session() as session:
        station = make_station(session).id
        ids = [
            make_locker(session, station, [CompartmentSpec(0, 1, "S")])[0].id
            for _ in range(LOCKERS)
        ]
        session.commit()
    return ids


def _send_events(locker: ProtocolLocker, n: int) -> None:
    """QoS 1 without waiting: paho keeps what it could not hand over and sends it on reconnect."""
    for _ in range(n):
        event = locker.event("door_opened", compartment="0-1")
        locker.client.publish(topic(locker.locker_id, "evt"), encode(event), qos=1)


def _verify(drill: Drill, p: Platform, lockers: list[ProtocolLocker], sent: list[str]) -> None:
    total_commands, total_events = LOCKERS * COMMANDS, LOCKERS * EVENTS
    wait_for(lambda: _done(p) == total_commands, timeout=90, what="every command acked")
    wait_for(lambda: _applied(p) == total_events, timeout=90, what="every event applied")
    drill.check("commands acked done (DB)", total_commands, _done(p))
    with p.session() as session:
        stuck = session.scalar(
            select(func.count()).select_from(OutboxCommand).where(OutboxCommand.status != "done")
        )
        wear = sorted(c.wear_count for c in session.scalars(select(Compartment)))
    drill.check("commands not done", 0, stuck)
    delivered = set().union(*(lk.distinct_commands() for lk in lockers))
    drill.check(
        "of our commands, those that reached a locker", len(sent), len(delivered & set(sent))
    )
    deliveries = sum(len(lk.commands) for lk in lockers)
    executed = sum(len(lk.acks) for lk in lockers)
    drill.check("commands executed by the lockers (by id)", len(delivered), executed)
    drill.note(f"deliveries incl. redeliveries after the fault: {deliveries}")
    drill.check("events applied (DB, by seq)", total_events, _applied(p))
    drill.check("door_opened counted per compartment", [EVENTS] * LOCKERS, wear)


@pytest.mark.slow
def test_mosquitto_restarted_during_dispatch(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    broker: PrivateBroker,
    drill: Drill,
) -> None:
    drill.title = "Mosquitto restarted during dispatch"
    p = platform_for(broker.port, command_ack_timeout_s=0.5, command_retry_max_s=1.0)
    ids = _lockers(p)
    bridge = bridges(p, durable=True)
    wait_for(bridge.connected.is_set, what="bridge connected")
    lockers = [ProtocolLocker(i, broker.port).connect() for i in ids]
    try:
        sent = [c for i in ids for c in _enqueue(p, i, COMMANDS // 2)]
        for lk in lockers:
            _send_events(lk, EVENTS // 2)
        wait_for(lambda: _done(p) >= 1 and _applied(p) >= 1, what="dispatch under way")
        before = (_done(p), _applied(p))
        broker.restart()
        drill.fault(
            f"mosquitto restarted (SIGTERM, same port) with {before[0]}/{len(sent)} commands "
            f"done and {before[1]} events applied"
        )
        sent += [c for i in ids for c in _enqueue(p, i, COMMANDS - COMMANDS // 2)]
        for lk in lockers:
            _send_events(lk, EVENTS - EVENTS // 2)
        _verify(drill, p, lockers, sent)
        drill.check("bridge reconnected", True, bridge.stats.connects >= 2)
    finally:
        for lk in lockers:
            lk.close()
    drill.done()


class BridgeProcess:
    """`tuanbox bridge` (``run_bridge``) in a process of its own, so a drill can SIGKILL it."""

    def __init__(self, p: Platform) -> None:
        self.settings = p.settings
        self.client_id = f"drill-bridge-{uuid.uuid4().hex[:8]}"
        self.proc: BaseProcess | None = None

    def start(self) -> None:
        self.proc = multiprocessing.get_context("spawn").Process(
            target=run_bridge,
            args=(self.settings,),
            kwargs={"client_id": self.client_id, "durable": True},
        )
        self.proc.start()

    def alive(self) -> bool:
        assert self.proc is not None and self.proc.is_alive(), "the bridge process died"
        return True

    def kill(self) -> int | None:
        assert self.proc is not None and self.proc.pid is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(15)
        return self.proc.exitcode

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()  # SIGTERM: run_bridge stops the bridge cleanly
            self.proc.join(15)


@pytest.mark.slow
def test_bridge_killed_mid_batch(
    platform_for: Callable[..., Platform],
    broker: PrivateBroker,
    drill: Drill,
) -> None:
    drill.title = "bridge killed with SIGKILL mid-batch"
    p = platform_for(broker.port, command_ack_timeout_s=0.5, command_retry_max_s=1.0)
    ids = _lockers(p)
    bridge = BridgeProcess(p)
    bridge.start()
    lockers = [ProtocolLocker(i, broker.port).connect() for i in ids]
    try:
        # The batch: every command in the outbox at once, events streaming in from the lockers.
        sent = [c for i in ids for c in _enqueue(p, i, COMMANDS)]
        # The bridge publishes only once its subscriptions stand, so from here the broker
        # keeps its persistent session's messages.
        wait_for(lambda: bridge.alive() and _done(p) >= 1, 60, "the bridge at work")
        for lk in lockers:
            _send_events(lk, EVENTS // 2)
        wait_for(lambda: _applied(p) >= 1, 60, "events being applied")
        exitcode = bridge.kill()
        done, applied = _done(p), _applied(p)
        drill.fault(
            f"bridge SIGKILLed with {done}/{len(sent)} commands done and "
            f"{applied}/{LOCKERS * EVENTS} events applied"
        )
        assert exitcode == -signal.SIGKILL
        for lk in lockers:  # the lockers carry on while no bridge runs
            _send_events(lk, EVENTS - EVENTS // 2)
        bridge.start()  # same client id: its broker session kept what arrived meanwhile
        _verify(drill, p, lockers, sent)
    finally:
        bridge.stop()
        for lk in lockers:
            lk.close()
    drill.done()
