"""Benchmark: QR scan → unlock latency under load, the telemetry writer against raw ``/write``, RSS.

Run: ``.venv/bin/python bench/edge_pickup.py`` (Mosquitto on 127.0.0.1:1883 and InfluxDB on
127.0.0.1:8086, or TEST_MQTT_PORT / TEST_INFLUX_URL).

1. Pickup latency under load. The agent runs as its own process (``python -m edge.agent
   run``), as on a Pi: one Kerong board of 16 doors polled every 150 ms, 16 DS18B20 probes
   sampled every 100 ms (160 points/s, hundreds of times a real locker) to InfluxDB, health
   points every second. The bench owns a raw pty for the scanner and the simulated Kerong
   bus. t0 is taken just before the QR line is written to the scanner pty; t1 when the
   simulator has read the ``0x31`` unlock frame off the lock pty. In between: serial read,
   line split, Ed25519 verification, the ledger's ``pending`` row (SQLite, synchronous=FULL),
   the serial worker's queue (an unlock may wait behind a status request). The agent's
   resident memory is read from ``/proc`` at the end (VmRSS now, VmHWM its peak).
2. Telemetry throughput: the same 50,000 ``cold_chain`` points through the agent's writer —
   appended 100 at a time as samplers do, group-committed to SQLite by the writer thread
   until every one is stored (``committed``), then drained oldest first in batches to
   ``/write`` until the buffer is empty and the deletes are committed — and through raw
   batched ``POST /write`` of the same lines, same batch size, on the same kind of
   keep-alive ``http.client`` connection. The two sides alternate every ``CHUNK`` points (a
   noisy moment of a shared machine hits both alike), after a warm-up chunk; append and
   drain are timed back to back, never overlapped. ``REPEATS`` such runs, fresh databases
   each; the figure is the median run's ratio.
"""

from __future__ import annotations

import http.client
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
from urllib.parse import urlencode, urlsplit

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.agent import schema  # noqa: E402
from edge.agent.store import Store  # noqa: E402
from edge.agent.telemetry import InfluxV1Sink, TelemetryBuffer, TelemetryForwarder  # noqa: E402
from edge.protocol import ds18b20, kerong  # noqa: E402
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
ROUNDS = 20
BOARDS, LOCKS = 1, 16  # 16 doors polled
PROBES, SAMPLE_S = 16, 0.1  # DS18B20 probes sampled every 100 ms while pickups run
POINTS = 50_000
BATCH = 500  # the agent's shipped default (influx.batch_size)
REPEATS = 5
CHUNK = 5_000  # points per alternation between the raw and the agent side


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


def _probes(w1_dir: Path) -> str:
    """Static DS18B20 files for the agent to read, and their ``[[sensors]]`` config."""
    config = []
    for n in range(PROBES):
        w1_id = f"28-0000000000{n:02x}"
        (w1_dir / w1_id).mkdir(parents=True)
        (w1_dir / w1_id / "w1_slave").write_text(ds18b20.render_w1_slave(3.0 + n / 10))
        config.append(
            f'[[sensors]]\nid = "probe-{n}"\nkind = "ds18b20"\nw1_id = "{w1_id}"\n'
            f'zone = "chilled"\ncompartment = "0-{n + 1}"\n'
        )
    return "".join(config)


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def bench_pickups(work: Path) -> dict[str, object]:
    locker_id = f"bench-{uuid.uuid4().hex[:8]}"
    private, public = generate_keypair()
    unlocks: queue.Queue[tuple[int, int, float]] = queue.Queue()

    def on_frame(frame: kerong.Frame, _at: float) -> None:
        if frame.cmd == kerong.CMD_UNLOCK:
            unlocks.put((frame.board, frame.lock, time.perf_counter()))

    board = LockBoardSim(
        work / "lockbus", boards=BOARDS, locks=LOCKS, door_open_delay=0.05, on_frame=on_frame
    )
    board.start()
    scan_master, scan_slave = _pty(work / "scanner")
    influx_db = f"bench_edge_{uuid.uuid4().hex[:6]}"
    config = work / "edge.toml"
    config.write_text(
        f'locker_id = "{locker_id}"\nstate_dir = "{work / "state"}"\nlog_level = "WARNING"\n'
        f'w1_dir = "{work / "w1"}"\nzone_intervals = {{ chilled = {SAMPLE_S} }}\n'
        f"[mqtt]\nport = {MQTT_PORT}\n"
        f'[serial]\nport = "{board.link}"\nboards = {BOARDS}\npoll_interval_ms = 150\n'
        f'[scanner]\nport = "{work / "scanner"}"\n'
        f'[pickup]\npublic_key = "{public_key_to_b64(public)}"\n'
        f'[influx]\nurl = "{INFLUX_URL}"\ndb = "{influx_db}"\n'
        f"[health]\ninterval_s = 1\n" + _probes(work / "w1")
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
    memory: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 20
        while board.frames_received == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the agent process is starting; nothing to poll on but the bus
        compartments = [(b, lk) for b in range(BOARDS) for lk in range(1, LOCKS + 1)]
        began = time.time()
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
                got_board, got_lock, t1 = unlocks.get(timeout=10)
                if (got_board, got_lock) != (b, lk):
                    raise SystemExit(f"wrong door: {(got_board, got_lock)} for {(b, lk)}")
                latencies.append((t1 - t0) * 1000)
            time.sleep(0.3)  # doors swing open and are seen open before the shopper closes
            for b, lk in compartments:
                board.close_door(f"{b}-{lk}")
            target = (round_no + 1) * len(compartments)
            platform.wait(lambda t=target: platform.picked >= t, 30, "picked_up events")
        seconds = time.time() - began
        memory = _memory_kib(agent.pid)
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
    cold = _count(influx_db, "SELECT count(celsius) FROM cold_chain")
    return {"latencies": latencies, "memory": memory, "cold": cold, "seconds": seconds}


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


def _count(db: str, q: str = "SELECT count(celsius) FROM cold_chain") -> int:
    response = httpx.get(f"{INFLUX_URL}/query", params={"db": db, "q": q})
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def _new_db(prefix: str) -> str:
    db = f"{prefix}_{uuid.uuid4().hex[:6]}"
    httpx.post(f"{INFLUX_URL}/query", params={"q": f'CREATE DATABASE "{db}"'})
    return db


class RawWriter:
    """Batched POSTs of the lines on one keep-alive connection, nothing else (the standard
    library's http.client, as the agent's sink uses)."""

    def __init__(self) -> None:
        self.db = _new_db("bench_raw")
        url = urlsplit(INFLUX_URL)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        self.target = f"/write?{urlencode({'db': self.db, 'precision': 'ms'})}"

    def write(self, part: list[str]) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(part), BATCH):
            self.conn.request("POST", self.target, body="\n".join(part[i : i + BATCH]).encode())
            response = self.conn.getresponse()
            response.read()
            if response.status != 204:
                raise SystemExit(f"raw /write answered {response.status}")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


class AgentWriter:
    """The agent's writer: append until stored (committed), then drain until the buffer is
    empty and its deletes are committed."""

    def __init__(self, work: Path) -> None:
        self.db = _new_db("bench_agent")
        self.store = Store(work / f"tel-{uuid.uuid4().hex[:6]}.sqlite3", outbox_max_rows=10**7)
        self.buffer = TelemetryBuffer(self.store, max_rows=10**7, commit_lines=BATCH).start()
        self.forwarder = TelemetryForwarder(
            self.buffer, InfluxV1Sink(INFLUX_URL, self.db), batch_size=BATCH, flush_interval_s=1
        )

    def write(self, part: list[str]) -> tuple[float, float]:
        t0 = time.perf_counter()
        for i in range(0, len(part), 100):  # samplers append a zone's worth at a time
            ticket = self.buffer.append(part[i : i + 100])
        while self.buffer.committed < ticket:  # stored = committed by the writer thread
            time.sleep(0.0005)
        t1 = time.perf_counter()
        while self.forwarder.flush_once():
            pass
        self.buffer.flush()  # the deletes ride on a commit too
        if self.store.telemetry_depth() != 0:
            raise SystemExit("the agent's buffer did not drain")
        return t1 - t0, time.perf_counter() - t1

    def close(self) -> None:
        self.buffer.stop()
        self.forwarder.sink.close()
        self.store.close()


def bench_telemetry(work: Path) -> dict[str, list[float]]:
    """Per repeat: the points in chunks, raw and agent alternating chunk by chunk, so a
    noisy moment of this shared machine hits both sides alike; the first chunk warms up."""
    lines = _lines("bench", int(time.time() * 1000) - 3_600_000)
    runs: dict[str, list[float]] = {"raw": [], "append": [], "drain": [], "commits": []}
    for _ in range(REPEATS):
        raw, agent = RawWriter(), AgentWriter(work)
        totals = [0.0, 0.0, 0.0]
        try:
            raw.write(lines[:CHUNK])  # warm-up, not counted (the points are written again)
            agent.write(lines[:CHUNK])
            for n, start in enumerate(range(0, POINTS, CHUNK)):
                part = lines[start : start + CHUNK]
                if n % 2:
                    raw_s, (append_s, drain_s) = raw.write(part), agent.write(part)
                else:
                    (append_s, drain_s), raw_s = agent.write(part), raw.write(part)
                for k, value in enumerate((raw_s, append_s, drain_s)):
                    totals[k] += value
            commits = agent.buffer.commits
        finally:
            raw.close()
            agent.close()
        if (_count(raw.db), _count(agent.db)) != (POINTS, POINTS):
            raise SystemExit("a side lost points")
        for key, value in zip(("raw", "append", "drain"), totals, strict=True):
            runs[key].append(value)
        runs["commits"].append(commits)
    return runs


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        pickup = bench_pickups(work)
        tel = bench_telemetry(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lat = pickup["latencies"]
    assert isinstance(lat, list)
    memory = pickup["memory"]
    assert isinstance(memory, dict)
    raw_rate = POINTS / statistics.median(tel["raw"])
    agent_times = [a + d for a, d in zip(tel["append"], tel["drain"], strict=True)]
    agent_rate = POINTS / statistics.median(agent_times)
    ratios = sorted(r / a for r, a in zip(tel["raw"], agent_times, strict=True))
    print("## Edge agent: pickup latency, telemetry writer, memory (`bench/edge_pickup.py`)\n")
    print(f"load average before / after: {load_before} / {load_after}\n")
    print("| what | figure | baseline in the same run |")
    print("| --- | --- | --- |")
    print(
        f"| QR line on scanner pty → unlock frame on lock pty ({len(lat)} pickups; agent as "
        f"its own process, {BOARDS * LOCKS} doors polled every 150 ms, {PROBES} probes every "
        f"{SAMPLE_S * 1000:.0f} ms → InfluxDB: {pickup['cold']:,} points in "
        f"{pickup['seconds']:.0f} s) | p50 {statistics.median(lat):.2f} ms, "
        f"p99 {_pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms | — |"
    )
    print(
        f"| telemetry through the agent's writer ({POINTS:,} points, batches of {BATCH}, "
        f"group commit → SQLite → /write → delete; sides alternating every {CHUNK:,} "
        f"points; median of {REPEATS} runs) | "
        f"{agent_rate:,.0f} points/s (append until stored "
        f"{POINTS / statistics.median(tel['append']):,.0f}/s in "
        f"{statistics.median(tel['commits']):.0f} commits, drain "
        f"{POINTS / statistics.median(tel['drain']):,.0f}/s) | raw batched /write (same client): "
        f"{raw_rate:,.0f} points/s |"
    )
    print(
        f"| writer / raw | **{statistics.median(ratios):.0%}** (median run; runs sorted: "
        f"{', '.join(f'{r:.0%}' for r in ratios)}) | goal ≥ 60 % |"
    )
    print(
        f"| agent resident memory after the pickup run | VmRSS "
        f"{memory.get('VmRSS', 0) / 1024:.1f} MiB, peak (VmHWM) "
        f"{memory.get('VmHWM', 0) / 1024:.1f} MiB | goal < 60 MB |"
    )


if __name__ == "__main__":
    main()
