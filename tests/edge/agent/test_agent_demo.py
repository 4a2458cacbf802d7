"""``edge.agent.demo.run_locker``: what ``make demo`` and the fulfilment flow drive."""

from __future__ import annotations

import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.demo import run_locker
from edge.protocol.token import public_key_to_b64
from firmware_sim.control import request
from tests.edge.agent.support import PlatformClient, arm, assign, qr, wait_until


def test_demo_locker_deposit_and_pickup_through_control_sockets(
    tmp_path: Path, mqtt_broker: tuple[str, int], signing_key: Ed25519PrivateKey
) -> None:
    locker_id = f"demo-{uuid.uuid4().hex[:8]}"
    platform = PlatformClient(*mqtt_broker, locker_id)
    locker = run_locker(
        locker_id,
        tmp_path / "demo",
        mqtt_port=mqtt_broker[1],
        pickup_public_key=public_key_to_b64(signing_key.public_key()),
    )
    info = locker.describe()
    board, scanner = info["lockboard_control"], info["scanner_control"]

    def swung_open() -> bool:
        # the hook releases at once (the agent's door_opened); the door swings a moment later
        return request(board, "get_state")["compartments"]["0-5"]["door"] == "open"

    try:
        wait_until(lambda: locker.runtime.link.connected, what="demo agent online")
        wait_until(locker.runtime.scanner.connected.is_set, what="scanner open")  # type: ignore[union-attr]
        platform.send(assign(locker_id, "0-5", "ord-5", "555000"))
        wait_until(lambda: len(platform.acks) >= 2, what="assign acked")
        request(scanner, "scan", text="*555000")
        platform.wait_event("door_opened")
        wait_until(swung_open, what="door swung open")
        request(board, "place_item", compartment="0-5")
        request(board, "close_door", compartment="0-5")
        platform.wait_event("deposited")
        platform.send(arm(locker_id, "0-5", "ord-5", "tk-5"))
        wait_until(lambda: len(platform.acks) >= 4, what="arm acked")
        request(scanner, "scan", text=qr(signing_key, locker_id, "0-5", "ord-5", "tk-5"))
        platform.wait_event("door_opened", count=2)
        wait_until(swung_open, what="door swung open")
        request(board, "remove_item", compartment="0-5")
        request(board, "close_door", compartment="0-5")
        assert platform.wait_event("picked_up")[0].payload["order_id"] == "ord-5"
    finally:
        locker.stop()
        platform.close()
