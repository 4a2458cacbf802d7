"""kill -9 of the agent process in the middle of a stream of events loses none of them."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from edge.protocol.envelopes import Event
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim
from tests.edge.agent.support import PlatformClient, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _write_config(tmp_path: Path, broker: tuple[str, int], bus: Path, scanner: Path) -> Path:
    config = tmp_path / "edge.toml"
    config.write_text(
        f"""
locker_id = "crash-{uuid.uuid4().hex[:10]}"
state_dir = "{tmp_path / "state"}"
log_format = "console"

[mqtt]
host = "{broker[0]}"
port = {broker[1]}
keepalive_s = 5
backoff_min_s = 0.1
backoff_max_s = 1.0

[serial]
port = "{bus}"
boards = 2
poll_interval_ms = 100

[scanner]
port = "{scanner}"
"""
    )
    return config


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge.agent", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )


def _stored_seq(db: Path) -> tuple[int, int]:
    """(last seq, outbox depth) straight from the agent's SQLite file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        depth = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    return (int(seq[0]) if seq else 0), int(depth)


@pytest.mark.slow
def test_kill_9_mid_events_then_restart_delivers_every_seq(
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    lockbus: LockBoardSim,
    scanner_sim: ScannerSim,
) -> None:
    config = _write_config(tmp_path, mqtt_broker, lockbus.link, scanner_sim.link)
    locker_id = config.read_text().split('"')[1]
    platform = PlatformClient(*mqtt_broker, locker_id)
    log = tmp_path / "agent.log"
    agent = _start(config, log)
    stop_feeding = threading.Event()

    def feed() -> None:
        # Every line is a rejected scan, i.e. one event; a steady stream, like a busy locker.
        n = 0
        while not stop_feeding.is_set():
            scanner_sim.scan(f"junk-{n}")
            n += 1
            stop_feeding.wait(0.003)

    feeder = threading.Thread(target=feed, daemon=True)
    try:
        online = wait_until(
            lambda: [s for s in platform.statuses if s.state == "online"], 20, "agent online"
        )
        first_boot = online[0].boot_id
        wait_until(lambda: lockbus.frames_received > 0, 20, "the agent polling the bus")
        feeder.start()
        wait_until(lambda: len(platform.events) >= 40, 20, "events before the kill")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        seq_at_kill, depth_at_kill = _stored_seq(tmp_path / "state" / "agent.sqlite3")
        offline = wait_until(
            lambda: [s for s in platform.statuses if s.state == "offline"], 20, "the will"
        )
        assert offline[-1].boot_id == first_boot

        agent = _start(config, log)
        wait_until(
            lambda: any(s.state == "online" and s.boot_id != first_boot for s in platform.statuses),
            20,
            "the restarted agent",
        )
        wait_until(lambda: len(platform.events) >= seq_at_kill + 40, 30, "events after restart")
        stop_feeding.set()
        feeder.join()
        # Lines still on their way through the scanner and the agent's inbox become events
        # after the outbox can already look empty: a last, distinct line (a wrong keypad
        # code) is handled after every junk line before it, so once its event is out, no
        # line is left behind it and the last seq below is the last one.
        scanner_sim.scan("#0")
        wait_until(
            lambda: any(e.payload.get("reason") == "CODE_WRONG" for e in platform.events),
            30,
            "the last line's event",
        )

        db = tmp_path / "state" / "agent.sqlite3"
        wait_until(lambda: _stored_seq(db)[1] == 0, 30, "the outbox to drain")
        last_seq = _stored_seq(db)[0]

        def have_all() -> bool:
            return {e.seq for e in platform.events} >= set(range(1, last_seq + 1))

        wait_until(have_all, 30, f"every seq 1..{last_seq}")
    finally:
        stop_feeding.set()
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
        platform.close()

    by_seq: dict[int, Event] = {}
    for event in platform.events:
        assert event.seq <= last_seq
        if event.seq in by_seq:
            assert event == by_seq[event.seq], "a duplicate must be the same event"
        by_seq[event.seq] = event
    assert sorted(by_seq) == list(range(1, last_seq + 1))
    assert seq_at_kill >= 40 and last_seq > seq_at_kill
    print(f"kill -9 drill: {seq_at_kill} events stored at the kill ({depth_at_kill} unsent), "
          f"{last_seq} in total, {len(platform.events) - last_seq} duplicates")  # fmt: skip
