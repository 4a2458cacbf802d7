"""Telemetry: line protocol, the bounded SQLite buffer, and store-and-forward to real InfluxDB."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest

from edge.agent import schema
from edge.agent.errors import TelemetryWriteError
from edge.agent.main import EdgeRuntime
from edge.agent.ports import TelemetrySink
from edge.agent.store import Store, TelemetryRow
from edge.agent.telemetry import (
    InfluxV1Sink,
    InfluxV2Sink,
    TelemetryBuffer,
    TelemetryForwarder,
)
from tests.edge.agent.support import (
    OwnInfluxd,
    agent_settings,
    influx_create_db,
    influx_query,
    wait_until,
)
from tests.edge.agent.test_agent_commands import FakeBoard
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "agent.sqlite3")
    yield s
    s.close()


def _points(locker: str, start_ms: int, count: int) -> list[str]:
    return [
        schema.cold_chain(locker, "0-1", "chilled", "probe 1", start_ms + i, 3.0 + i / 100, 60.0)
        for i in range(count)
    ]


def test_line_protocol_names_and_escaping() -> None:
    line = schema.cold_chain("L 1", "0-1", "chilled", "28-00", 1700000000123, 3.5, 61.0)
    assert line == (
        r"cold_chain,compartment=0-1,locker=L\ 1,sensor=28-00,zone=chilled "
        "celsius=3.5,humidity=61.0 1700000000123"
    )
    assert schema.door("L1", "0-2", True, 5) == 'door,compartment=0-2,locker=L1 state="open" 5'
    health = schema.locker_health(
        "L1", 7, outbox_depth=3, mqtt_connected=False, uptime_s=9, dropped_points=0,
        telemetry_backlog=1,
    )  # fmt: skip
    assert health == (
        "locker_health,locker=L1 outbox_depth=3i,mqtt_connected=false,uptime_s=9i,"
        "dropped_points=0i,dropped_events=0i,telemetry_backlog=1i,"
        f'agent_version="{schema.AGENT_VERSION}" 7'
    )
    # an empty compartment tag (a zone-wide probe) is left out rather than sent empty
    assert ",compartment=" not in schema.cold_chain("L1", "", "frozen", "p", 1, -19.0)


def test_buffer_is_bounded_and_counts_drops(store: Store) -> None:
    buffer = TelemetryBuffer(store, max_rows=10)
    buffer.append([f"m v={i}i {i}" for i in range(8)])
    buffer.append([f"m v={i}i {i}" for i in range(8, 15)])
    assert store.telemetry_depth() == 10
    assert store.dropped_points() == 5
    # the oldest went: what is left starts at point 5
    assert store.telemetry_batch(1)[0].text.split("\n")[0] == "m v=5i 5"
    rows = store.telemetry_batch(100)
    assert [line for r in rows for line in r.text.split("\n")] == [
        f"m v={i}i {i}" for i in range(5, 15)
    ]


def test_resend_overwrites_instead_of_duplicating(influx_url: str) -> None:
    db = f"edge_test_{uuid.uuid4().hex[:8]}"
    influx_create_db(influx_url, db)
    sink = InfluxV1Sink(influx_url, db)
    lines = _points("L1", int(time.time() * 1000), 50)
    sink.write(lines)
    sink.write(lines)
    sink.close()
    assert influx_query(influx_url, db, "SELECT count(celsius) FROM cold_chain")[0][1] == 50


def test_rejected_lines_are_dropped_not_retried_forever(store: Store, influx_url: str) -> None:
    db = f"edge_test_{uuid.uuid4().hex[:8]}"
    buffer = TelemetryBuffer(store, 1000)
    forwarder = TelemetryForwarder(
        buffer, InfluxV1Sink(influx_url, db), batch_size=10, flush_interval_s=0.1
    )
    buffer.append(["not line protocol at all"])
    now_ms = int(time.time() * 1000)
    assert forwarder.flush_once() == 1  # the database is created on the way
    assert forwarder.rejected == 1
    buffer.append(_points("L1", now_ms, 5))
    assert forwarder.flush_once() == 5
    assert forwarder.written == 5
    forwarder.sink.close()


def test_influxdb_down_points_buffered_then_written_once(tmp_path: Path, store: Store) -> None:
    influx = OwnInfluxd(tmp_path / "influx")
    influx.start()
    db = "edge_outage"
    influx_create_db(influx.url, db)
    buffer = TelemetryBuffer(store, 100_000)
    forwarder = TelemetryForwarder(
        buffer,
        InfluxV1Sink(influx.url, db, timeout_s=1.0),
        batch_size=100,
        flush_interval_s=0.05,
        backoff_max_s=0.5,
    ).start()
    base = int(time.time() * 1000) - 60_000
    sent = 0
    try:
        buffer.append(_points("L1", base, 300))
        sent += 300
        wait_until(lambda: store.telemetry_depth() == 0, 20, "the first points to land")
        influx.kill()
        buffer.append(_points("L1", base + sent, 700))
        sent += 700
        wait_until(lambda: forwarder.last_error is not None, 20, "the writer to notice")
        assert store.telemetry_depth() == 700  # held on disk, nothing lost
        influx.start()
        wait_until(lambda: store.telemetry_depth() == 0, 60, "the backlog to drain")
    finally:
        forwarder.stop()
        influx.kill()
    influx.start()
    try:
        rows = influx_query(influx.url, db, "SELECT celsius FROM cold_chain")
    finally:
        influx.kill()
    times = [row[0] for row in rows]
    assert len(times) == sent
    assert len(set(times)) == sent
    assert times == sorted(times)
    assert forwarder.written >= sent  # a batch cut off mid-write may go twice; it overwrote


class _Influx2(BaseHTTPRequestHandler):
    """A local server answering like InfluxDB 2.x's write endpoint (none runs here)."""

    seen: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []
    answers: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.seen.append((self.path, dict(self.headers), self.rfile.read(length)))
        status = self.answers.pop(0)
        body = b"" if status == 204 else b'{"code":"invalid","message":"nope"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_influx_v2_request_shape() -> None:
    """No InfluxDB 2.x here: a local HTTP server speaking its write API, the real sink."""
    _Influx2.seen, _Influx2.answers = [], [204, 401, 400]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Influx2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    sink = InfluxV2Sink(url, "tuanbox", "telemetry", "tok")
    try:
        lines = _points("L1", 1_700_000_000_000, 2)
        sink.write(lines)
        path, headers, body = _Influx2.seen[0]
        parts = urlsplit(path)
        assert parts.path == "/api/v2/write"
        assert dict(parse_qsl(parts.query)) == {
            "org": "tuanbox", "bucket": "telemetry", "precision": "ms"
        }  # fmt: skip
        assert headers["Authorization"] == "Token tok"
        assert body.decode().splitlines() == lines
        with pytest.raises(TelemetryWriteError) as unauthorized:
            sink.write(lines)
        assert unauthorized.value.retryable  # a token fixed later must not lose the buffer
        with pytest.raises(TelemetryWriteError) as bad:
            sink.write(lines)
        assert not bad.value.retryable and bad.value.code == "INFLUX_REJECTED"
    finally:
        sink.close()
        server.shutdown()
        server.server_close()


def test_influx_unreachable_is_retryable() -> None:
    sink = InfluxV1Sink(f"http://127.0.0.1:{free_port()}", "db", timeout_s=1.0)
    with pytest.raises(TelemetryWriteError) as down:
        sink.write(["m v=1i 1"])
    assert down.value.retryable and down.value.code == "INFLUX_UNAVAILABLE"
    sink.close()


def test_group_commit_one_transaction_per_batch(store: Store) -> None:
    # The interval is a minute away: only a full batch can make the writer commit.
    buffer = TelemetryBuffer(store, 100_000, commit_interval_s=60, commit_lines=1000).start()
    try:
        for n in range(9):
            buffer.append(_points("L1", n * 100, 100))
        assert buffer.committed == 0 and store.telemetry_depth() == 0  # queued, not stored yet
        ticket = buffer.append(_points("L1", 900, 100))  # the 1,000th point fills a batch
        wait_until(lambda: buffer.committed >= ticket, 10, "the batch to be committed")
        assert buffer.commits == 1  # ten appends, one transaction
        assert store.telemetry_depth() == 1000
        rows = store.telemetry_batch(10_000)
        assert [r.points for r in rows] == [100] * 10  # a row per hundred points
    finally:
        buffer.stop()


def test_group_commit_within_the_interval_and_on_a_clean_stop(store: Store) -> None:
    buffer = TelemetryBuffer(store, 100_000, commit_interval_s=0.05, commit_lines=10_000).start()
    ticket = buffer.append(_points("L1", 0, 3))  # far from a batch: the interval commits it
    wait_until(lambda: buffer.committed >= ticket, 10, "the interval commit")
    assert store.telemetry_depth() == 3
    buffer.stop()
    slow = TelemetryBuffer(store, 100_000, commit_interval_s=60, commit_lines=10_000).start()
    slow.append(_points("L1", 3, 4))
    assert store.telemetry_depth() == 3
    slow.stop()  # a clean stop commits what is queued
    assert store.telemetry_depth() == 7 and slow.committed == slow.appended == 4


@pytest.mark.slow
def test_kill_9_loses_no_point_reported_stored_even_with_influxdb_down(tmp_path: Path) -> None:
    """The writer's guarantee: a point counted in ``committed`` survives kill -9 and an outage.

    A child process runs the agent's writer and forwarder under a steady load and prints the
    committed watermark after each commit. InfluxDB is killed mid-run (points pile up on disk),
    then the child is killed with SIGKILL. After a restart of both, every point below the last
    printed watermark is in InfluxDB exactly once; only points appended after the last commit
    (at most one commit interval's worth) may be missing.
    """
    influx = OwnInfluxd(tmp_path / "influx")
    influx.start()
    db_name = "drill"
    influx_create_db(influx.url, db_name)
    db = tmp_path / "agent.sqlite3"
    start_ms = int(time.time() * 1000) - 3_600_000
    reports: list[tuple[int, int]] = []
    with (tmp_path / "child.log").open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.edge.agent.writer_drill", str(db), influx.url,
             db_name, str(start_ms)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip

    def read() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            committed, appended = raw.split()
            reports.append((int(committed), int(appended)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: reports and reports[-1][0] >= 3000, 30, "points stored, InfluxDB up")
        influx.kill()
        before_outage = reports[-1][0]
        wait_until(lambda: reports[-1][0] >= before_outage + 3000, 30, "points stored offline")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        reader.join(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        reader.join(10)
        assert child.stdout is not None
        child.stdout.close()
        influx.kill()
    stored, appended = reports[-1]  # the last watermark printed before the kill

    influx.start()
    try:
        store = Store(db)
        buffer = TelemetryBuffer(store, 10_000_000)
        forwarder = TelemetryForwarder(
            buffer, InfluxV1Sink(influx.url, db_name), batch_size=5000, flush_interval_s=0.1
        )
        while forwarder.flush_once():
            pass
        forwarder.sink.close()
        assert store.telemetry_depth() == 0
        store.close()
        end = start_ms + stored
        q = "SELECT count(celsius) FROM cold_chain"
        below = influx_query(influx.url, db_name, f"{q} WHERE time < {end}ms")
        total = influx_query(influx.url, db_name, q)
    finally:
        influx.kill()
    assert below[0][1] == stored  # every point reported stored, once each
    assert stored > before_outage >= 3000
    print(f"writer kill -9 drill: {stored} points reported stored, all in InfluxDB; "
          f"{total[0][1] - stored} committed after the last report made it too; "
          f"at least {appended} appended")  # fmt: skip


def test_locker_health_reports_dropped_points_and_events(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path, outbox_max_rows=100, influx_buffer_max_rows=50)
    runtime = EdgeRuntime(settings, board=FakeBoard())
    store = runtime.store
    try:
        runtime.buffer.append(_points(settings.locker_id, 0, 60))  # 10 past the telemetry bound
        at = datetime.now(UTC)
        for n in range(120):  # junk scans while offline push telemetry out, then each other
            store.append_event(settings.locker_id, "pickup_rejected", {"n": n}, at)
        # telemetry keeps its newest tenth of the bound; the oldest junk scans went after it
        assert store.telemetry_depth() == 10 and store.dropped_points() == 50
        assert store.outbox_depth() == 90 and store.dropped_events() == 30
        runtime._health()
        runtime.buffer.flush()
        health = store.telemetry_batch(100)[-1].text.split("\n")[-1]
    finally:
        runtime.agent.stop()
        store.close()
    assert health.startswith("locker_health,")
    assert "dropped_points=50i,dropped_events=30i," in health


def test_forgetting_sent_rows_skips_the_fsync_storing_points_keeps_it(store: Store) -> None:
    statements: list[str] = []
    store.telemetry.connection.set_trace_callback(statements.append)
    buffer = TelemetryBuffer(store, 100_000)
    buffer.append(_points("L1", 0, 5))  # not started: the append commits at once
    stored = list(statements)
    assert "PRAGMA synchronous=NORMAL" not in stored  # points: fsync'd as before
    last = store.telemetry_batch(100)[-1].id
    statements.clear()
    buffer.mark_sent(last)  # a commit that only deletes
    assert statements[0] == "PRAGMA synchronous=NORMAL"
    assert statements[-1] == "PRAGMA synchronous=FULL"
    assert any(s.startswith("DELETE FROM telemetry") for s in statements)
    assert store.telemetry_depth() == 0
    store.telemetry.connection.set_trace_callback(None)
    assert store.telemetry.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class _OverlappingSink(TelemetrySink):
    """Records batches; reads ahead while "InfluxDB" works, then fails if told to."""

    def __init__(self, buffer: TelemetryBuffer) -> None:
        self.buffer = buffer
        self.batches: list[list[str]] = []
        self.fail_after_read_ahead = False

    def write(self, lines: list[str]) -> None:
        raise AssertionError("the forwarder overlaps its writes")

    def write_overlapped(self, lines: list[str], meanwhile: Callable[[], None]) -> None:
        meanwhile()
        if self.fail_after_read_ahead:
            self.fail_after_read_ahead = False
            raise TelemetryWriteError("InfluxDB answered 503", retryable=True)
        self.batches.append(lines)


def test_forwarder_reads_the_next_batch_during_a_write_and_drops_it_on_failure(
    store: Store,
) -> None:
    buffer = TelemetryBuffer(store, 100_000)
    sink = _OverlappingSink(buffer)
    forwarder = TelemetryForwarder(buffer, sink, batch_size=100, flush_interval_s=0.1)
    lines = _points("L1", 0, 300)
    buffer.append(lines)
    reads: list[int] = []
    batch_of = store.telemetry_batch

    def counted(max_points: int, *, after: int = 0) -> list[TelemetryRow]:
        reads.append(after)
        return batch_of(max_points, after=after)

    store.telemetry_batch = counted  # type: ignore[method-assign]
    assert forwarder.flush_once() == 100
    assert forwarder.behind  # the read-ahead saw more waiting
    sink.fail_after_read_ahead = True
    with pytest.raises(TelemetryWriteError):
        forwarder.flush_once()  # the second batch, read ahead, did not land
    assert forwarder.flush_once() == 100  # so it goes again, not the third
    assert forwarder.flush_once() == 100
    assert forwarder.flush_once() == 0
    sent = "\n".join(row for batch in sink.batches for row in batch)
    assert sent.split("\n") == lines  # in order, once each
    # Rows 1-3 hold 100 points each. Read: the first batch, then during each write the rows
    # after it; the failed write's read-ahead (row 2) is read again after its retry's batch.
    assert reads == [0, 1, 2, 1, 2, 3, 3]


def test_overlapped_write_runs_meanwhile_once_between_request_and_answer(influx_url: str) -> None:
    db = f"edge_test_{uuid.uuid4().hex[:8]}"
    sink = InfluxV1Sink(influx_url, db)  # the database is created on the way: a second POST
    calls: list[float] = []
    sink.write_overlapped(_points("L1", int(time.time() * 1000), 20), lambda: calls.append(1))
    sink.close()
    assert calls == [1]
    assert influx_query(influx_url, db, "SELECT count(celsius) FROM cold_chain")[0][1] == 20
