"""kill -9 of the agent between recording a QR token and the door opening.

The lock-bus simulator kills the agent process (SIGKILL) the moment the unlock frame reaches
the bus, before the board acts on it: the token is on disk as ``pending`` and nothing else
is. After a restart the agent must neither burn the token (the door never opened) nor let
it open the door twice (the door did open, and the parcel was taken while it was down).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol import kerong
from edge.protocol.token import public_key_to_b64
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim
from tests.edge.agent.support import PlatformClient, arm, qr, wait_until

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Victim:
    """The agent process, and whether the next unlock frame on the bus should kill it."""

    proc: subprocess.Popen[bytes] | None = None
    armed: bool = False
    killed: threading.Event = field(default_factory=threading.Event)

    def on_frame(self, frame: kerong.Frame, _at: float) -> None:
        # Runs in the simulator's I/O thread before the board answers or unlocks anything.
        if frame.cmd == kerong.CMD_UNLOCK and self.armed and self.proc is not None:
            self.armed = False
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.killed.set()


@dataclass
class Locker:
    victim: Victim
    bus: LockBoardSim
    scanner: ScannerSim
    platform: PlatformClient
    config: Path
    db: Path
    log: Path
    locker_id: str

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.victim.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.agent", "run", "--config", str(self.config)],
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        boots = {s.boot_id for s in self.platform.statuses if s.state == "online"}
        wait_until(
            lambda: any(
                s.state == "online" and s.boot_id not in boots for s in self.platform.statuses
            ),
            20,
            "the agent online",
        )
        polled = self.bus.frames_received
        wait_until(lambda: self.bus.frames_received > polled + 2, 10, "the agent polling")

    def ledger(self, token_id: str) -> str | None:
        """The token's state in the agent's ledger, read straight from its SQLite file."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT * FROM used_tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
        if row is None:
            return None
        return str(row["state"]) if "state" in row.keys() else "used"  # noqa: SIM118 - sqlite3.Row

    def door(self, compartment: str) -> str:
        return str(self.bus.get_state()["compartments"][compartment]["door"])


@pytest.fixture
def locker(
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    scanner_sim: ScannerSim,
    signing_key: Ed25519PrivateKey,
) -> Iterator[Locker]:
    victim = Victim()
    bus = LockBoardSim(
        tmp_path / "lockbus", boards=1, locks=16, door_open_delay=0.05, on_frame=victim.on_frame
    )
    bus.start()
    locker_id = f"crashpick-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "edge.toml"
    config.write_text(
        f'locker_id = "{locker_id}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'log_format = "console"\n'
        f'[mqtt]\nhost = "{mqtt_broker[0]}"\nport = {mqtt_broker[1]}\nkeepalive_s = 5\n'
        f"backoff_min_s = 0.1\nbackoff_max_s = 1.0\n"
        f'[serial]\nport = "{bus.link}"\nboards = 1\npoll_interval_ms = 100\n'
        f"unlock_confirm_s = 1.0\n"
        f'[scanner]\nport = "{scanner_sim.link}"\n'
        f'[pickup]\npublic_key = "{public_key_to_b64(signing_key.public_key())}"\n'
    )
    platform = PlatformClient(*mqtt_broker, locker_id)
    rig = Locker(
        victim,
        bus,
        scanner_sim,
        platform,
        config,
        tmp_path / "state" / "agent.sqlite3",
        tmp_path / "agent.log",
        locker_id,
    )
    try:
        yield rig
    finally:
        if victim.proc is not None and victim.proc.poll() is None:
            victim.proc.send_signal(signal.SIGTERM)
            victim.proc.wait(15)
        platform.close()
        bus.stop()


def _arm(locker: Locker, compartment: str, order: str, token_id: str) -> None:
    command = arm(locker.locker_id, compartment, order, token_id)
    locker.platform.send(command)
    assert locker.platform.wait_final_ack(command.id).status == "done"


@pytest.mark.slow
def test_kill_9_before_the_door_opened_releases_the_token(
    locker: Locker, signing_key: Ed25519PrivateKey
) -> None:
    locker.bus.place_item("0-3", force=True)  # the parcel, deposited earlier
    locker.start()
    _arm(locker, "0-3", "order-3", "tok-3")
    token = qr(signing_key, locker.locker_id, "0-3", "order-3", "tok-3")
    locker.bus.set_stuck("0-3")  # the frame reaches the bus but the lock does not act on it
    locker.victim.armed = True
    locker.scanner.scan(token)
    assert locker.victim.killed.wait(10), "the agent was never killed at the unlock frame"
    assert locker.ledger("tok-3") == "pending"  # on disk before any frame went out
    assert locker.door("0-3") == "closed"

    locker.bus.set_stuck("0-3", False)
    locker.start()
    failed = locker.platform.wait_event("unlock_failed")[-1]
    assert failed.payload["code"] == "INTERRUPTED"
    assert failed.payload["order_id"] == "order-3"
    assert locker.ledger("tok-3") is None  # released: not burnt

    locker.scanner.scan(token)  # the shopper scans the same QR again and the door opens
    wait_until(lambda: locker.door("0-3") == "open", 10, "the door to open")
    locker.platform.wait_event("door_opened")
    locker.bus.remove_item("0-3")
    locker.bus.close_door("0-3")
    picked = locker.platform.wait_event("picked_up")
    assert [e.payload["token_id"] for e in picked] == ["tok-3"]
    wait_until(lambda: locker.ledger("tok-3") == "used", 10, "the token spent")
    assert not locker.platform.events_of("pickup_rejected")


@pytest.mark.slow
@pytest.mark.parametrize("closed_while_down", [True, False])
def test_kill_9_after_the_door_opened_never_opens_it_twice(
    locker: Locker, signing_key: Ed25519PrivateKey, closed_while_down: bool
) -> None:
    locker.bus.place_item("0-5", force=True)
    locker.start()
    _arm(locker, "0-5", "order-5", "tok-5")
    token = qr(signing_key, locker.locker_id, "0-5", "order-5", "tok-5")
    locker.victim.armed = True
    locker.scanner.scan(token)
    assert locker.victim.killed.wait(10), "the agent was never killed at the unlock frame"
    assert locker.ledger("tok-5") == "pending"
    # The board did act on the frame: the door swings open while the agent is dead.
    wait_until(lambda: locker.door("0-5") == "open", 10, "the door to swing open")
    locker.bus.remove_item("0-5")
    if closed_while_down:
        locker.bus.close_door("0-5")

    locker.start()
    if not closed_while_down:
        wait_until(lambda: locker.ledger("tok-5") == "used", 10, "the token spent")
        locker.bus.close_door("0-5")
    picked = locker.platform.wait_event("picked_up")
    assert [e.payload["order_id"] for e in picked] == ["order-5"]
    assert locker.ledger("tok-5") == "used"

    locker.scanner.scan(token)  # the same QR again: refused, the door stays shut
    rejected = locker.platform.wait_event("pickup_rejected")
    assert rejected[0].payload["reason"] == "TOKEN_USED"
    assert locker.bus.unlock_count("0-5") == 1
    assert locker.door("0-5") == "closed"
    assert not locker.platform.events_of("unlock_failed")
