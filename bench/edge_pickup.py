"""Benchmark: QR scan → unlock frame latency through the real agent, and telemetry points/s.

Run: ``.venv/bin/python bench/edge_pickup.py`` (Mosquitto on 127.0.0.1:1883 and InfluxDB on
127.0.0.1:8086, or TEST_MQTT_PORT / TEST_INFLUX_URL).

1. Pickup latency. The agent runs as its own process (``python -m edge.agent run``), as on a
   Pi. The bench owns a raw pty for the scanner and the simulated Kerong bus. t0 is taken just
   before the QR line is written to the scanner pty; t1 when the simulator has read the
   ``0x31`` unlock frame off the lock pty. In between: serial read, line split, Ed25519
   verification, ledger insert (SQLite, synchronous=FULL), the serial worker's queue (door
   polling runs all the time, so an unlock may wait behind a status request).
2. Telemetry throughput. The same 50,000 ``cold_chain`` points through the agent's writer
   (SQLite buffer append, then oldest-first batches to ``/write``, each deleted after the
   204) against a raw batched httpx ``POST /write`` of the same lines, same batch size.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.agent import schema  # noqa: E402
from edge.agent.store import Store  # noqa: E402
from edge.agent.telemetry import InfluxV1Sink, TelemetryBuffer, TelemetryForwarder  # noqa: E402
from edge.protocol import kerong  # noqa: E402
from edge.protocol.envelopes import (  # noqa: E402
    ArmPickupPayload,
    Command,
    decode_ack,
    decode_event,
    encode,
    hash_code,
)
from edge.protocol.token import (  # noqa: E402
    PickupToken,
    generate_keypair,
    public_key_to_b64,
    sign_token,
)
from edge.protocol.topics import subscription, topic  # noqa: E402
from firmware_sim.lockboard import LockBoardSim  # noqa: E402

MQTT_PORT = int(os.environ.get("TEST_MQTT_PORT", "1883"))
INFLUX_URL = os.environ.get("TEST_INFLUX_URL", "http://127.0.0.1:8086")
ROUNDS = 10
BOARDS, LOCKS = 2, 16
POINTS = 50_000
BATCH = 500  # the agent's shipped default (influx.batch_size)


class TimedBoard(LockBoardSim):
    """The simulated bus, noting when each unlock frame was read off the pty."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.unlocks: queue.Queue[tuple[int, int, float]] = queue.Queue()

    def _answer(self, frame: kerong.Frame) -> None:
        if frame.cmd == kerong.CMD_UNLOCK:
            self.unlocks.put((frame.board, frame.lock, time.perf_counter()))
        super()._answer(frame)


class Platform:
    def __init__(self, locker_id: str) -> None:
        self.locker_id = locker_id
        self.acks: dict[str, str] = {}
        self.picked = 0
        self.cond = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{locker_id}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", MQTT_PORT)
        for kind in ("ack", "evt"):
            self.client.subscribe(subscription(kind, locker_id), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.cond:
            if msg.topic.endswith("/ack"):
                ack = decode_ack(bytes(msg.payload))
                self.acks[ack.command_id] = ack.status
            elif decode_event(bytes(msg.payload)).type == "picked_up":
                self.picked += 1
            self.cond.notify_all()

    def wait(self, check: object, timeout: float, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(check, timeout):  # type: ignore[arg-type]
                raise SystemExit(f"timed out waiting for {what}")

    def send(self, command: Command) -> None:
        self.client.publish(topic(self.locker_id, "cmd"), encode(command), qos=1)


def _pty(link: Path) -> tuple[int, int]:
    master, slave = os.openpty()
    tty.setraw(slave)
    link.symlink_to(os.ttyname(slave))
    return master, slave


def bench_pickups(work: Path) -> list[float]:
    locker_id = f"bench-{uuid.uuid4().hex[:8]}"
    private, public = generate_keypair()
    board = TimedBoard(work / "lockbus", boards=BOARDS, locks=LOCKS, door_open_delay=0.05)
    board.start()
    scan_master, scan_slave = _pty(work / "scanner")
    config = work / "edge.toml"
    config.write_text(
        f'locker_id = "{locker_id}"\nstate_dir = "{work / "state"}"\nlog_level = "WARNING"\n'
        f"[mqtt]\nport = {MQTT_PORT}\n"
        f'[serial]\nport = "{board.link}"\nboards = {BOARDS}\npoll_interval_ms = 150\n'
        f'[scanner]\nport = "{work / "scanner"}"\n'
        f'[pickup]\npublic_key = "{public_key_to_b64(public)}"\n'
    )
    with (work / "agent.log").open("ab") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge.agent", "run", "--config", str(config)],
            cwd=REPO,
            stdout=log,
            stderr=log,
        )
    platform = Platform(locker_id)
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while board.frames_received == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the agent process is starting; nothing to poll on but the bus
        compartments = [(b, lk) for b in range(BOARDS) for lk in range(1, LOCKS + 1)]
        for round_no in range(ROUNDS):
            now = datetime.now(UTC)
            commands = []
            for b, lk in compartments:
                payload = ArmPickupPayload(
                    order_id=f"o{round_no}-{b}-{lk}",
                    compartment=f"{b}-{lk}",
                    token_id=f"t{round_no}-{b}-{lk}",
                    fallback_code_hash=hash_code("1", locker_id),
                    valid_until=now + timedelta(hours=1),
                )
                command = Command.new("arm_pickup", payload, issued_at=now, ttl_seconds=60)
                commands.append(command)
                platform.send(command)
            platform.wait(
                lambda cs=commands: all(platform.acks.get(c.id) == "done" for c in cs),
                30,
                "arm acks",
            )
            for b, lk in compartments:
                issued = int(time.time())
                token = PickupToken(
                    tid=f"t{round_no}-{b}-{lk}",
                    lid=locker_id,
                    cmp=f"{b}-{lk}",
                    oid=f"o{round_no}-{b}-{lk}",
                    exp=issued + 600,
                    iat=issued,
                )
                line = sign_token(private, token).encode() + b"\r\n"
                t0 = time.perf_counter()
                os.write(scan_master, line)
                got_board, got_lock, t1 = board.unlocks.get(timeout=10)
                if (got_board, got_lock) != (b, lk):
                    raise SystemExit(f"wrong door: {(got_board, got_lock)} for {(b, lk)}")
                latencies.append((t1 - t0) * 1000)
            time.sleep(0.3)  # doors swing open and are seen open before the shopper closes
            for b, lk in compartments:
                board.close_door(f"{b}-{lk}")
            target = (round_no + 1) * len(compartments)
            platform.wait(lambda t=target: platform.picked >= t, 30, "picked_up events")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        for kind in ("state", "status"):  # leave no retained bench locker on the broker
            platform.client.publish(
                topic(locker_id, kind), b"", qos=1, retain=True
            ).wait_for_publish(5)
        platform.client.loop_stop()
        board.stop()
        os.close(scan_master)
        os.close(scan_slave)
    return latencies


def _lines(locker: str, start_ms: int) -> list[str]:
    return [
        schema.cold_chain(
            locker,
            f"0-{i % 16 + 1}",
            "chilled",
            f"p{i % 16}",
            start_ms + i,
            3.0 + (i % 50) / 10,
            60.0,
        )
        for i in range(POINTS)
    ]


def _count(db: str) -> int:
    response = httpx.get(
        f"{INFLUX_URL}/query", params={"db": db, "q": "SELECT count(celsius) FROM cold_chain"}
    )
    return int(response.json()["results"][0]["series"][0]["values"][0][1])


def bench_telemetry(work: Path) -> dict[str, float]:
    start_ms = int(time.time() * 1000) - 3_600_000
    lines = _lines("bench", start_ms)
    agent_db, raw_db = f"bench_agent_{uuid.uuid4().hex[:6]}", f"bench_raw_{uuid.uuid4().hex[:6]}"
    for db in (agent_db, raw_db):
        httpx.post(f"{INFLUX_URL}/query", params={"q": f'CREATE DATABASE "{db}"'})

    # raw: batched httpx POSTs of the same lines, nothing else
    with httpx.Client(timeout=30) as client:
        t0 = time.perf_counter()
        for i in range(0, POINTS, BATCH):
            body = "\n".join(lines[i : i + BATCH]).encode()
            response = client.post(
                f"{INFLUX_URL}/write", params={"db": raw_db, "precision": "ms"}, content=body
            )
            response.raise_for_status()
        raw_s = time.perf_counter() - t0

    # the agent's writer: append into the SQLite buffer (as samplers do), then drain it
    store = Store(work / "telemetry.sqlite3")
    buffer = TelemetryBuffer(store, max_rows=1_000_000)
    t0 = time.perf_counter()
    for i in range(0, POINTS, 100):  # samplers append a zone's worth of points at a time
        buffer.append(lines[i : i + 100])
    append_s = time.perf_counter() - t0
    forwarder = TelemetryForwarder(
        buffer, InfluxV1Sink(INFLUX_URL, agent_db), batch_size=BATCH, flush_interval_s=1
    )
    t0 = time.perf_counter()
    while forwarder.flush_once():
        pass
    drain_s = time.perf_counter() - t0
    forwarder.sink.close()
    store.close()
    counts = (_count(agent_db), _count(raw_db))
    if counts != (POINTS, POINTS):
        raise SystemExit(f"point counts differ: agent {counts[0]}, raw {counts[1]}")
    return {"raw_s": raw_s, "append_s": append_s, "drain_s": drain_s}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    try:
        lat = bench_pickups(work)
        tel = bench_telemetry(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    agent_rate = POINTS / (tel["append_s"] + tel["drain_s"])
    print("## Edge agent: pickup latency and telemetry writer (`bench/edge_pickup.py`)\n")
    print("| what | figure | baseline in the same run |")
    print("| --- | --- | --- |")
    print(
        f"| QR line on scanner pty → unlock frame on lock pty ({len(lat)} pickups, agent as "
        f"its own process) | p50 {statistics.median(lat):.2f} ms, p99 {_pct(lat, 0.99):.2f} ms,"
        f" max {max(lat):.2f} ms | — |"
    )
    print(
        f"| telemetry through the agent's writer ({POINTS:,} points, batches of {BATCH}, "
        f"SQLite buffer → /write → delete) | {agent_rate:,.0f} points/s (append "
        f"{POINTS / tel['append_s']:,.0f}/s, drain {POINTS / tel['drain_s']:,.0f}/s) | raw "
        f"batched httpx /write: {POINTS / tel['raw_s']:,.0f} points/s |"
    )


if __name__ == "__main__":
    main()
