"""The whole agent against the simulated board and scanner on ptys and the real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.lockboard import KerongBoard
from edge.agent.main import EdgeRuntime
from edge.agent.scanner import SerialScanner
from edge.protocol.envelopes import Command, ConfigurePayload, OpenPayload
from edge.protocol.token import public_key_to_b64
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim
from tests.edge.agent.support import (
    PlatformClient,
    agent_settings,
    arm,
    assign,
    now,
    qr,
    wait_until,
)


@pytest.fixture
def locker(
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    lockbus: LockBoardSim,
    scanner_sim: ScannerSim,
    signing_key: Ed25519PrivateKey,
) -> Iterator[tuple[EdgeRuntime, PlatformClient]]:
    settings = agent_settings(
        tmp_path,
        mqtt_port=mqtt_broker[1],
        serial_port=str(lockbus.link),
        serial_boards=2,
        scanner_port=str(scanner_sim.link),
        pickup_public_key=public_key_to_b64(signing_key.public_key()),
    )
    platform = PlatformClient(*mqtt_broker, settings.locker_id)
    runtime = EdgeRuntime(settings).start()
    wait_until(lambda: runtime.link.connected, what="agent connected")
    wait_until(lambda: runtime.agent.doors.views, what="first door poll")
    assert isinstance(runtime.scanner, SerialScanner)
    wait_until(runtime.scanner.connected.is_set, what="scanner port open")
    yield runtime, platform
    runtime.stop()
    platform.close()


def test_presence_and_state_are_retained(locker: tuple[EdgeRuntime, PlatformClient]) -> None:
    runtime, platform = locker
    status = wait_until(lambda: platform.statuses, what="status")[-1]
    assert status.state == "online"
    assert status.boot_id == runtime.boot_id
    late = PlatformClient("127.0.0.1", runtime.settings.mqtt_port, runtime.settings.locker_id)
    try:
        wait_until(lambda: "status" in late.retained and "state" in late.retained, what="retained")
        assert late.states[-1].boot_id == runtime.boot_id
        assert len(late.states[-1].compartments) == 32
    finally:
        late.close()


def test_deposit_and_qr_pickup(
    locker: tuple[EdgeRuntime, PlatformClient],
    lockbus: LockBoardSim,
    scanner_sim: ScannerSim,
    signing_key: Ed25519PrivateKey,
) -> None:
    runtime, platform = locker
    lid = runtime.settings.locker_id
    command = assign(lid, "1-2", "order-42", "864200")
    platform.send(command)
    assert platform.wait_final_ack(command.id).status == "done"
    scanner_sim.scan("*864200")
    # the courier takes a moment: the agent sees the door open before it is shut again
    platform.wait_event("door_opened")
    wait_until(lambda: lockbus.get_state()["compartments"]["1-2"]["door"] == "open", what="open")
    lockbus.place_item("1-2")
    lockbus.close_door("1-2")
    deposited = platform.wait_event("deposited")[0]
    assert deposited.payload == {"compartment": "1-2", "order_id": "order-42"}

    armed = arm(lid, "1-2", "order-42", "tok-42")
    platform.send(armed)
    assert platform.wait_final_ack(armed.id).status == "done"
    token = qr(signing_key, lid, "1-2", "order-42", "tok-42")
    scanner_sim.scan(token)
    platform.wait_event("door_opened", count=2)
    wait_until(lambda: lockbus.get_state()["compartments"]["1-2"]["door"] == "open", what="open")
    lockbus.remove_item("1-2")
    lockbus.close_door("1-2")
    picked = platform.wait_event("picked_up")[0]
    assert picked.payload["order_id"] == "order-42"
    scanner_sim.scan(token)  # the same QR again
    assert platform.wait_event("pickup_rejected")[0].payload["reason"] == "TOKEN_USED"
    assert lockbus.unlock_count("1-2") == 2
    seqs = [e.seq for e in platform.events]
    assert seqs == list(range(1, len(seqs) + 1))
    final_state = wait_until(
        lambda: platform.states and platform.states[-1].compartments[17].armed_order is None
        and platform.states[-1].compartments[17].reserved_for is None and platform.states[-1],
        what="state without the order",
    )  # fmt: skip
    assert final_state.compartments[17].compartment == "1-2"


def test_stuck_lock_reports_unlock_failed_and_token_survives(
    locker: tuple[EdgeRuntime, PlatformClient],
    lockbus: LockBoardSim,
    scanner_sim: ScannerSim,
    signing_key: Ed25519PrivateKey,
) -> None:
    runtime, platform = locker
    lid = runtime.settings.locker_id
    armed = arm(lid, "0-7", "order-7", "tok-7")
    platform.send(armed)
    platform.wait_final_ack(armed.id)
    lockbus.set_stuck("0-7")
    token = qr(signing_key, lid, "0-7", "order-7", "tok-7")
    scanner_sim.scan(token)
    failed = platform.wait_event("unlock_failed")[0]
    assert failed.payload["compartment"] == "0-7"
    assert failed.payload["code"] == "UNLOCK_NOT_CONFIRMED"
    # the door never opened, so the shopper may scan the same QR once the lock is fixed
    lockbus.set_stuck("0-7", False)
    scanner_sim.scan(token)
    platform.wait_event("door_opened")


def test_command_sent_twice_over_mqtt_is_applied_once(
    locker: tuple[EdgeRuntime, PlatformClient],
) -> None:
    runtime, platform = locker
    command = assign(runtime.settings.locker_id, "0-9", "order-9", "909090")
    platform.send(command)
    platform.wait_final_ack(command.id)
    platform.send(command)
    wait_until(lambda: len(platform.acks_for(command.id)) == 3, what="the repeated ack")
    statuses = [a.status for a in platform.acks_for(command.id)]
    assert statuses == ["accepted", "done", "done"]
    assert platform.acks_for(command.id)[1] == platform.acks_for(command.id)[2]


def test_unplugged_lock_bus_does_not_stop_the_agent(
    locker: tuple[EdgeRuntime, PlatformClient], lockbus: LockBoardSim, scanner_sim: ScannerSim
) -> None:
    runtime, platform = locker
    lid = runtime.settings.locker_id
    lockbus.unplug(3.0)
    # commands are still applied and acked while the USB adapter is out
    command = assign(lid, "0-11", "order-11", "111000")
    platform.send(command)
    assert platform.wait_final_ack(command.id).status == "done"
    board = runtime.board
    assert isinstance(board, KerongBoard)
    wait_until(lambda: board.connected.is_set() and board.reopen_count >= 2, 20, "bus reopened")
    scanner_sim.scan("*111000")
    opened = platform.wait_event("door_opened", 15)
    assert opened[-1].payload["compartment"] == "0-11"


def test_garbage_on_the_bus_during_a_pickup(
    locker: tuple[EdgeRuntime, PlatformClient],
    lockbus: LockBoardSim,
    scanner_sim: ScannerSim,
    signing_key: Ed25519PrivateKey,
) -> None:
    runtime, platform = locker
    lid = runtime.settings.locker_id
    command = arm(lid, "1-16", "order-g", "tok-g")
    platform.send(command)
    platform.wait_final_ack(command.id)
    lockbus.set_garbage_every(17)
    lockbus.set_bad_checksum(2)
    for _ in range(5):
        lockbus.inject_garbage(64)
    scanner_sim.scan(qr(signing_key, lid, "1-16", "order-g", "tok-g"))
    opened = platform.wait_event("door_opened", 15)
    assert [e.payload["compartment"] for e in opened] == ["1-16"]  # no other door, ever
    assert not platform.events_of("tamper")
    assert runtime.board.garbage_bytes > 0  # type: ignore[attr-defined]


def test_door_left_open_raised_once(
    locker: tuple[EdgeRuntime, PlatformClient], lockbus: LockBoardSim
) -> None:
    _, platform = locker
    configure = Command.new(
        "configure", ConfigurePayload(door_left_open_seconds=1), issued_at=now(), ttl_seconds=60
    )
    platform.send(configure)
    platform.wait_final_ack(configure.id)
    open_ = Command.new(
        "open", OpenPayload(compartment="0-12", reason="cleaning", operator="ops"),
        issued_at=now(), ttl_seconds=60,
    )  # fmt: skip
    platform.send(open_)
    assert platform.wait_final_ack(open_.id).status == "done"
    lockbus.door_left_open("0-12")
    left = platform.wait_event("door_left_open", 10)
    assert left[0].payload["compartment"] == "0-12"
    lockbus.close_door("0-12")
    platform.wait_event("door_closed")
    assert len(platform.events_of("door_left_open")) == 1
