"""Benchmark: commands from the outbox to the lockers' acks through the real bridge and broker.

Run: ``.venv/bin/python bench/dispatch.py [--lockers 1000] [--commands 2000]`` (PostgreSQL on
loopback, a Mosquitto of its own). A throwaway database is created and dropped. N
protocol-level lockers, each on its own topics, multiplexed over a few paho clients in a child
process (``--clients``), answer every command as the agent does: ``accepted`` then ``done``
(``--done-only``: just ``done``). One durable bridge runs in a child process of its own, so its
resident memory is its own. Figures:

- burst: M commands committed in one transaction, time from the commit until every ack is
  recorded in the DB (commands/s) and each command's commit → ack-recorded latency;
- paced: commands one transaction each every 20 ms, the same latency without queueing;
- baseline in the same run: raw paho QoS 1 publish → subscribe through the same broker
  (messages/s and latency), so the bridge's and the database's share is visible;
- the bridge's resident memory (VmRSS) idle, with the lockers connected, after the burst;
- where a burst's time goes: claimed → the locker's final ack → recorded, the bridge's
  claiming and inbound transactions, the CPU time of bridge, lockers and broker
  (``--profile FILE``: py-spy samples of the bridge during the burst: of the thread holding the
  GIL, i.e. where its CPU goes; ``--profile-idle``: of every thread, waiting included).

The broker takes the production config's limits and TCP settings
(deploy/mosquitto/mosquitto.conf: max_inflight_messages, max_queued_messages,
set_tcp_nodelay); ``--broker-defaults`` runs it on Mosquitto's defaults instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
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
from tuanbox.dispatch.bridge import Bridge, forget_session, no_delay  # noqa: E402
from tuanbox.dispatch.models import OutboxCommand  # noqa: E402
from tuanbox.dispatch.process import BRIDGE_PRE_PING  # noqa: E402
from tuanbox.fulfilment.lifecycle import Context  # noqa: E402
from tuanbox.fulfilment.pickup import load_signing_key  # noqa: E402
from tuanbox.lockers.models import Locker  # noqa: E402
from tuanbox.lockers.services import CompartmentSpec, create_locker, create_station  # noqa: E402
from tuanbox.settings import Settings  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
HOST = "127.0.0.1"
PORT = 1883  # the bench's own broker's port, set by main() and passed to the children
MOSQUITTO = "/usr/sbin/mosquitto"


def until(
    predicate: Callable[[], object], what: str, timeout: float = 300.0, every: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)


class LockerGroup:
    """Many protocol-level lockers on one MQTT connection: each subscribes to its own ``cmd``
    topic, says ``online`` on its own ``status`` topic and acks on its own ``ack`` topic."""

    def __init__(self, ids: list[str], *, done_only: bool) -> None:
        self.ids = ids
        self.done_only = done_only
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-lockers-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, PORT)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        no_delay(client)  # as the bridge does: acks written back to back
        client.subscribe([(topic(i, "cmd"), 1) for i in self.ids])
        for locker_id in self.ids:
            status = Status(state="online", boot_id="bench", at=datetime.now(UTC))
            client.publish(topic(locker_id, "status"), encode(status), qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        locker_id = msg.topic.split("/")[3]
        command = decode_command(bytes(msg.payload))
        statuses = ("done",) if self.done_only else ("accepted", "done")
        for status in statuses:
            ack = Ack(command_id=command.id, status=status, at=datetime.now(UTC))
            client.publish(topic(locker_id, "ack"), encode(ack), qos=1)

    def close(self) -> None:
        for locker_id in self.ids:  # the bench's lockers leave no retained status behind
            client = self.client
            client.publish(topic(locker_id, "status"), b"", qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()


def serve_lockers(clients: int, done_only: bool) -> None:
    """Child process: locker ids on stdin's first line; run them until stdin closes."""
    ids = sys.stdin.readline().split()
    per = -(-len(ids) // clients)
    groups = [LockerGroup(ids[k : k + per], done_only=done_only) for k in range(0, len(ids), per)]
    for group in groups:
        group.subscribed.wait(60)
    print("ready", flush=True)
    sys.stdin.read()
    for group in groups:
        group.close()


def bench_settings(url: str) -> Settings:
    return Settings(
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


def serve_bridge(url: str, client_id: str, workers: int | None) -> None:
    """Child process: a durable bridge, built as `tuanbox bridge` builds it, until stdin closes."""
    settings = bench_settings(url)
    if workers is not None:
        settings = settings.model_copy(update={"bridge_inbound_workers": workers})
    engine = make_engine(url, pool_size=10, pool_pre_ping=BRIDGE_PRE_PING)
    factory = make_session_factory(engine, settings)
    bridge = Bridge(
        settings, factory, Context(settings, load_signing_key(settings)), client_id=client_id
    )
    bridge.start()
    print("ready", flush=True)
    while sys.stdin.readline():  # "stats": the bridge's counters so far, on one line
        stats = bridge.stats
        print(
            f"{stats.claims} {stats.batches} {stats.acks} {stats.published} "
            f"{stats.claim_s} {stats.housekeeping_s} {stats.inbound_s}",
            flush=True,
        )
    bridge.stop()
    forget_session(settings, bridge.client_id)
    engine.dispose()


# The production broker's limits and TCP settings, which the bench's broker takes unless
# --broker-defaults: the bridge's window, the per-client queue, Nagle off.
PRODUCTION_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
TUNING = ("max_inflight_messages", "max_queued_messages", "set_tcp_nodelay")


def production_tuning() -> list[str]:
    lines = PRODUCTION_CONF.read_text().splitlines()
    return [line for line in lines if line.split(" ", 1)[0] in TUNING]


def private_broker(directory: Path, tuning: list[str]) -> subprocess.Popen[bytes]:
    """A Mosquitto of the bench's own, with the given lines of configuration: on the
    machine's shared broker every other bridge running (other suites' tests) would receive, and
    drop, the bench's lockers' messages, and ours theirs."""
    global PORT
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        PORT = int(sock.getsockname()[1])
    conf = directory / "mosquitto.conf"
    extra = "".join(f"{line}\n" for line in tuning)
    conf.write_text(f"listener {PORT} {HOST}\nallow_anonymous true\nuser root\n{extra}")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            socket.create_connection((HOST, PORT), timeout=1).close()
        except OSError:
            return False
        return True

    until(up, "private mosquitto", 10)
    return proc


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--port", str(PORT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc


def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"child not ready: {line!r}")


def finish(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.wait(60)
    proc.stdout.close()


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
    parser.add_argument("--lockers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=10, help="MQTT connections of the lockers")
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--done-only", action="store_true", help="ack done without accepted")
    parser.add_argument(
        "--broker-defaults",
        action="store_true",
        help="Mosquitto's defaults (20 in flight, 1,000 queued, Nagle on), not production's",
    )
    parser.add_argument(
        "--profile", default=None, help="py-spy the bridge during the burst, raw stacks to FILE"
    )
    parser.add_argument(
        "--profile-idle", action="store_true", help="--profile every thread, waiting included"
    )
    parser.add_argument(
        "--inbound-workers",
        type=int,
        default=None,
        help="the bridge's inbound workers (default: TUANBOX_BRIDGE_INBOUND_WORKERS's default)",
    )
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-lockers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bridge", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PORT
    if args.port is not None:
        PORT = args.port
    if args.serve_lockers:
        serve_lockers(args.clients, args.done_only)
        return
    if args.serve_bridge:
        url, client_id, workers = args.serve_bridge
        serve_bridge(url, client_id, int(workers) or None)
        return

    workdir = tempfile.TemporaryDirectory(prefix="tuanbox-bench-")
    tuning = [] if args.broker_defaults else production_tuning()
    broker = private_broker(Path(workdir.name), tuning)
    name = f"tuanbox_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{PG}/{name}"
    upgrade(url)
    engine = make_engine(url, pool_size=4)
    settings = bench_settings(url)
    factory = make_session_factory(engine, settings)
    run = uuid.uuid4().hex[:6]
    ids = [f"bench-{run}-{i}" for i in range(args.lockers)]
    with session_scope(factory) as session:
        station = create_station(session, id=f"st-{run}", name="b", address="b", lat=0, lon=0)
        for locker_id in ids:
            create_locker(
                session, id=locker_id, station_id=station.id, layout=[CompartmentSpec(0, 1, "S")]
            )
    # The bridge and the lockers run in processes of their own, as they would on their own
    # machines: their JSON and paho work does not compete for one interpreter's GIL.
    workers = args.inbound_workers or settings.bridge_inbound_workers
    bridge = child("--serve-bridge", url, f"bench-{run}", str(workers))
    ready(bridge)
    until(lambda: rss_mib(bridge.pid) > 0, "bridge up")
    time.sleep(1)  # settle: threads started, pool warm (a reading, not a wait for a result)
    rss = {"idle": rss_mib(bridge.pid)}
    lockers = child(
        "--serve-lockers", "--clients", str(args.clients), *(["--done-only"] * args.done_only)
    )
    assert lockers.stdin is not None
    lockers.stdin.write(" ".join(ids) + "\n")
    lockers.stdin.flush()
    ready(lockers)

    def online() -> bool:
        with factory() as s:
            return s.scalar(sa.select(sa.func.count()).where(Locker.online)) == len(ids)

    until(online, "lockers online")

    def settled() -> bool:  # each new locker's `configure` and coming-online `sync`
        with factory() as s:
            waiting = sa.select(sa.func.count()).where(
                OutboxCommand.status.in_(("pending", "sent", "accepted"))
            )
            return s.scalar(waiting) == 0

    until(settled, "provisioning commands acked")
    rss["lockers"] = rss_mib(bridge.pid)

    def done_count() -> int:
        with factory() as s:
            return int(
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(OutboxCommand)
                    # the bench's own: not the syncs the lockers' coming online asked for
                    .where(OutboxCommand.status == "done", OutboxCommand.ref.is_(None))
                )
                or 0
            )

    def acked_at(ids_: list[str]) -> dict[str, datetime]:
        return {cid: acked for cid, (_, acked) in sent_acked(ids_).items()}

    def stages(ids_: list[str]) -> tuple[list[float], list[float]]:
        """Per command, ms: claimed → the locker's final ack (its `at`, same machine's clock),
        and that ack → recorded in the database."""
        with factory() as s:
            rows = s.execute(
                sa.select(
                    OutboxCommand.last_sent_at, OutboxCommand.acked_at, OutboxCommand.updated_at
                ).where(OutboxCommand.id.in_(ids_))
            ).all()
        out = [(r.acked_at - r.last_sent_at).total_seconds() * 1000 for r in rows]
        back = [(r.updated_at - r.acked_at).total_seconds() * 1000 for r in rows]
        return out, back

    def sent_acked(ids_: list[str]) -> dict[str, tuple[datetime, datetime]]:
        """Per command: when the bridge claimed it (its pass's clock), when its ack was recorded."""
        with factory() as s:
            rows = s.execute(
                sa.select(
                    OutboxCommand.id, OutboxCommand.last_sent_at, OutboxCommand.updated_at
                ).where(OutboxCommand.id.in_(ids_))
            ).all()
        return {r.id: (r.last_sent_at, r.updated_at) for r in rows}

    spy = None
    if args.profile:  # samples of the burst only, not of the lockers coming online
        how = "--idle" if args.profile_idle else "--gil"
        py_spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", how]
        spy = subprocess.Popen(
            [*py_spy, "-r", "100", "-f", "raw", "-o", args.profile, "-p", str(bridge.pid)],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)  # py-spy attaching (a reading starts, not a wait for a result)

    def bridge_stats() -> list[float]:
        """The bridge's claiming and inbound transactions, acks and publishes so far, and the
        seconds it spent claiming, in housekeeping and applying inbound batches."""
        assert bridge.stdin is not None and bridge.stdout is not None
        bridge.stdin.write("stats\n")
        bridge.stdin.flush()
        return [float(x) for x in bridge.stdout.readline().split()]

    counters = bridge_stats()
    procs = {"bridge": bridge.pid, "lockers": lockers.pid, "broker": broker.pid}
    cpu = {name: cpu_s(pid) for name, pid in procs.items()}
    try:
        with session_scope(factory) as session:
            now = datetime.now(UTC)
            burst = [
                outbox.enqueue(
                    session, ids[i % len(ids)], "sync", SyncPayload(), now=now, ttl_s=600
                ).id
                for i in range(args.commands)
            ]
        committed = datetime.now(UTC)
        # Polled every 0.1 s: the figures come from the rows' times, and a tighter poll would
        # only take the database's time from the bridge.
        until(lambda: done_count() == args.commands, "burst acked", every=0.1)
        counters = [after - before for after, before in zip(bridge_stats(), counters, strict=True)]
        recorded = acked_at(burst)
        legs = stages(burst)
        burst_s = (max(recorded.values()) - committed).total_seconds()
        burst_lat = [(t - committed).total_seconds() * 1000 for t in recorded.values()]
        rss["burst"] = rss_mib(bridge.pid)
        cpu = {name: cpu_s(pid) - cpu[name] for name, pid in procs.items()}
        with factory() as s:
            resent = s.scalar(
                sa.select(sa.func.count()).where(
                    OutboxCommand.id.in_(burst), OutboxCommand.attempts > 1
                )
            )
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)

        paced: dict[str, datetime] = {}
        for i in range(args.paced):
            with session_scope(factory) as session:
                row = outbox.enqueue(
                    session,
                    ids[(i * 7) % len(ids)],
                    "sync",
                    SyncPayload(),
                    now=datetime.now(UTC),
                    ttl_s=600,
                )
            paced[row.id] = datetime.now(UTC)
            time.sleep(0.02)  # pacing the load generator, not waiting for a result
        until(lambda: done_count() == args.commands + args.paced, "paced acked", every=0.1)
        timings = sent_acked(list(paced))
        paced_lat = [(t - paced[cid]).total_seconds() * 1000 for cid, (_, t) in timings.items()]
        to_claim = [
            max((sent - paced[cid]).total_seconds() * 1000, 0.0)
            for cid, (sent, _) in timings.items()
        ]
        raw_rate, raw_lat = raw_paho(args.commands)  # same run, lockers and bridge still up
    finally:
        finish(bridge)  # first: the lockers' goodbye (clearing retained status) is not its work
        finish(lockers)
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        broker.terminate()
        broker.wait(10)
        workdir.cleanup()

    acks = "done" if args.done_only else "accepted + done"
    print(
        f"dispatch bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.lockers} lockers over "
        f"{args.clients} MQTT connections, {acks} per command, broker "
        f"{', '.join(tuning) or 'Mosquitto defaults'}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rate = args.commands / burst_s
    print("| what | figure |\n| --- | --- |")
    print(
        f"| burst of {args.commands} commands, commit → ack recorded | "
        f"{rate:,.0f} commands/s ({rate / raw_rate:.0%} of raw); latency p50 "
        f"{pct(burst_lat, 50):.0f} ms, p99 {pct(burst_lat, 99):.0f} ms; {resent} sent again |"
    )
    claims, batches, acks_in, _, claim_s, housekeeping_s, inbound_s = counters
    out, back = legs
    print(
        f"| burst legs | claimed → locker's final ack p50 {pct(out, 50):.0f} ms, p99 "
        f"{pct(out, 99):.0f} ms; that ack → recorded p50 {pct(back, 50):.0f} ms, p99 "
        f"{pct(back, 99):.0f} ms |"
    )
    print(
        f"| bridge transactions during the burst | {claims:.0f} claiming; {batches:.0f} inbound "
        f"for {acks_in:.0f} acks ({acks_in / max(batches, 1):.0f} a transaction; "
        f"{workers} inbound workers) |"
    )
    print(
        f"| bridge busy during the burst ({burst_s:.1f} s) | claiming {claim_s:.1f} s, "
        f"housekeeping {housekeeping_s:.1f} s, applying inbound {inbound_s:.1f} s (summed over "
        f"the workers); mean inbound transaction {inbound_s / max(batches, 1) * 1000:.0f} ms |"
    )
    print(
        f"| CPU during the burst ({burst_s:.1f} s) | "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items())
        + " |"
    )
    print(
        f"| {args.paced} paced commands (one per 20 ms), commit → ack recorded | latency p50 "
        f"{pct(paced_lat, 50):.1f} ms, p99 {pct(paced_lat, 99):.1f} ms, "
        f"mean {statistics.fmean(paced_lat):.1f} ms (commit → claimed p50 "
        f"{pct(to_claim, 50):.1f} ms, p99 {pct(to_claim, 99):.1f} ms) |"
    )
    print(
        f"| baseline: raw paho QoS 1 publish → subscribe, {args.commands} messages | "
        f"{raw_rate:,.0f} messages/s; latency p50 {pct(raw_lat, 50):.1f} ms, "
        f"p99 {pct(raw_lat, 99):.1f} ms |"
    )
    print(
        f"| bridge resident memory (VmRSS) | idle {rss['idle']:.0f} MiB; with {args.lockers} "
        f"lockers online {rss['lockers']:.0f} MiB; after the burst {rss['burst']:.0f} MiB; "
        f"{(rss['burst'] - rss['idle']) * 1000 / args.lockers:.0f} MiB per 1,000 lockers |"
    )


if __name__ == "__main__":
    main()
