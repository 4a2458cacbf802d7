"""Benchmark: commands from the outbox to the lockers' acks through the real bridge and broker.

Run: ``.venv/bin/python bench/dispatch.py [--lockers 20] [--commands 2000]`` (PostgreSQL and
Mosquitto on loopback). A throwaway database is created and dropped. N protocol-level lockers
(paho clients that ack every command ``done`` at once) and one durable bridge; figures:

- burst: M commands committed in one transaction, time until every ack is recorded in the DB
  (commands/s) and each command's outbox → ack latency (created → ack recorded);
- paced: commands one at a time every 20 ms, the same latency without queueing;
- baseline in the same run: raw paho QoS 1 publish → subscribe through the same broker
  (messages/s and latency), so the bridge's and the database's share is visible.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import paho.mqtt.client as mqtt  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge.protocol.envelopes import Ack, Status, SyncPayload, decode_command, encode  # noqa: E402
from edge.protocol.token import generate_keypair, private_key_to_b64  # noqa: E402
from edge.protocol.topics import topic  # noqa: E402
from tuanbox.db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from tuanbox.db.migrate import upgrade  # noqa: E402
from tuanbox.dispatch import outbox  # noqa: E402
from tuanbox.dispatch.bridge import Bridge, forget_session  # noqa: E402
from tuanbox.dispatch.models import OutboxCommand  # noqa: E402
from tuanbox.fulfilment.lifecycle import Context  # noqa: E402
from tuanbox.fulfilment.pickup import load_signing_key  # noqa: E402
from tuanbox.lockers.models import Locker  # noqa: E402
from tuanbox.lockers.services import CompartmentSpec, create_locker, create_station  # noqa: E402
from tuanbox.settings import Settings  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
HOST, PORT = "127.0.0.1", 1883


def until(predicate: Callable[[], object], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


class BenchLocker:
    """Acks every command ``done`` as soon as it arrives."""

    def __init__(self, locker_id: str) -> None:
        self.locker_id = locker_id
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{locker_id}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(HOST, PORT)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic(self.locker_id, "cmd"), qos=1)
        status = Status(state="online", boot_id="bench", at=datetime.now(UTC))
        client.publish(topic(self.locker_id, "status"), encode(status), qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        command = decode_command(bytes(msg.payload))
        ack = Ack(command_id=command.id, status="done", at=datetime.now(UTC))
        client.publish(topic(self.locker_id, "ack"), encode(ack), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def serve_lockers(ids: list[str]) -> None:
    """Child process: run the lockers until the parent closes our stdin."""
    lockers = [BenchLocker(i) for i in ids]
    print("ready", flush=True)
    sys.stdin.read()
    for locker in lockers:
        locker.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def raw_paho(n: int) -> tuple[float, list[float]]:
    """QoS 1 publish → subscribe through the broker: (messages/s, latencies in ms)."""
    name = f"bench/raw/{uuid.uuid4().hex}"
    got: list[float] = []
    done = threading.Event()
    ready = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((time.perf_counter() - struct.unpack("d", msg.payload[:8])[0]) * 1000)
        if len(got) == n:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:6]}")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: ready.set()
    sub.connect(HOST, PORT)
    sub.loop_start()
    sub.subscribe(name, qos=1)
    ready.wait(10)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    pub.max_inflight_messages_set(100)
    pub.connect(HOST, PORT)
    pub.loop_start()
    padding = b"x" * 200  # about the size of a command envelope
    start = time.perf_counter()
    for i in range(n):
        info = pub.publish(name, struct.pack("d", time.perf_counter()) + padding, qos=1)
        if i % 100 == 99:  # a window, so the broker's per-client queue (1000) never overflows
            info.wait_for_publish(10)
    done.wait(120)
    elapsed = time.perf_counter() - start
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return n / elapsed, got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lockers", type=int, default=20)
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--serve-lockers", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lockers:
        serve_lockers(args.serve_lockers.split(","))
        return

    name = f"tuanbox_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{PG}/{name}"
    upgrade(url)
    engine = make_engine(url, pool_size=10)
    factory = make_session_factory(engine)
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=url,
        mqtt_host=HOST,
        mqtt_port=PORT,
        secret_key="bench-" + "x" * 32,
        pii_key="bench-" + "y" * 32,
        payment_webhook_secret="bench-webhook",  # noqa: S106 - a throwaway bench value
        pickup_signing_key=private_key_to_b64(generate_keypair()[0]),
        bridge_batch=200,
    )
    run = uuid.uuid4().hex[:6]
    ids = [f"bench-{run}-{i}" for i in range(args.lockers)]
    with session_scope(factory) as session:
        station = create_station(session, id=f"st-{run}", name="b", address="b", lat=0, lon=0)
        for locker_id in ids:
            create_locker(
                session, id=locker_id, station_id=station.id, layout=[CompartmentSpec(0, 1, "S")]
            )
    bridge = Bridge(
        settings, factory, Context(settings, load_signing_key(settings)), client_id=f"bench-{run}"
    )
    bridge.start()
    # The lockers run in their own process, as they would on their own machines, so their
    # JSON and paho work does not compete with the bridge for this interpreter's GIL.
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-lockers", ",".join(ids)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"

    def online() -> bool:
        with factory() as s:
            return s.scalar(sa.select(sa.func.count()).where(Locker.online)) == len(ids)

    until(online, "lockers online")

    def done_count() -> int:
        with factory() as s:
            return int(
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(OutboxCommand)
                    .where(OutboxCommand.status == "done")
                )
                or 0
            )

    def latencies(since: int) -> list[float]:
        with factory() as s:
            rows = s.execute(
                sa.select(
                    OutboxCommand.created_at, OutboxCommand.acked_at, OutboxCommand.updated_at
                )
                .order_by(OutboxCommand.created_at)
                .offset(since)
            ).all()
        return [(r.updated_at - r.created_at).total_seconds() * 1000 for r in rows]

    try:
        with session_scope(factory) as session:
            now = datetime.now(UTC)
            for i in range(args.commands):
                outbox.enqueue(
                    session, ids[i % len(ids)], "sync", SyncPayload(), now=now, ttl_s=600
                )
        start = time.perf_counter()
        until(lambda: done_count() == args.commands, "burst acked")
        burst_s = time.perf_counter() - start
        burst_lat = latencies(0)

        for i in range(args.paced):
            with session_scope(factory) as session:
                outbox.enqueue(
                    session,
                    ids[i % len(ids)],
                    "sync",
                    SyncPayload(),
                    now=datetime.now(UTC),
                    ttl_s=600,
                )
            time.sleep(0.02)  # pacing the load generator, not waiting for a result
        until(lambda: done_count() == args.commands + args.paced, "paced acked")
        paced_lat = latencies(args.commands)
    finally:
        child.stdin.close()
        child.wait(30)
        child.stdout.close()
        bridge.stop()
        forget_session(settings, bridge.client_id)
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    raw_rate, raw_lat = raw_paho(args.commands)
    print(f"dispatch bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.lockers} lockers")
    print("| what | figure |\n| --- | --- |")
    print(
        f"| burst of {args.commands} commands, outbox → ack recorded | "
        f"{args.commands / burst_s:,.0f} commands/s; latency p50 {pct(burst_lat, 50):.0f} ms, "
        f"p99 {pct(burst_lat, 99):.0f} ms |"
    )
    print(
        f"| {args.paced} paced commands (one per 20 ms) | latency p50 {pct(paced_lat, 50):.1f} ms, "
        f"p99 {pct(paced_lat, 99):.1f} ms, mean {statistics.fmean(paced_lat):.1f} ms |"
    )
    print(
        f"| baseline: raw paho QoS 1 publish → subscribe, {args.commands} messages | "
        f"{raw_rate:,.0f} messages/s; latency p50 {pct(raw_lat, 50):.1f} ms, "
        f"p99 {pct(raw_lat, 99):.1f} ms |"
    )


if __name__ == "__main__":
    main()
