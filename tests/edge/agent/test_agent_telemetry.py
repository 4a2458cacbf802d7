"""Telemetry: line protocol, the bounded SQLite buffer, and store-and-forward to real InfluxDB."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.agent import schema
from edge.agent.errors import TelemetryWriteError
from edge.agent.store import Store
from edge.agent.telemetry import (
    InfluxV1Sink,
    InfluxV2Sink,
    TelemetryBuffer,
    TelemetryForwarder,
)
from tests.edge.agent.support import OwnInfluxd, influx_create_db, influx_query, wait_until


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
        f'dropped_points=0i,telemetry_backlog=1i,agent_version="{schema.AGENT_VERSION}" 7'
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
    assert store.telemetry_batch(1)[0][1] == "m v=5i 5"


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


def test_influx_v2_request_shape() -> None:
    """No InfluxDB 2.x here: check the request through httpx's own test transport."""
    seen: list[httpx.Request] = []
    answers = iter([204, 401, 400])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers), text="{}")

    sink = InfluxV2Sink(
        "http://influx2:8086/",
        "tuanbox",
        "telemetry",
        "tok",
        transport=httpx.MockTransport(handler),
    )
    lines = _points("L1", 1_700_000_000_000, 2)
    sink.write(lines)
    request = seen[0]
    assert request.url.path == "/api/v2/write"
    assert dict(request.url.params) == {"org": "tuanbox", "bucket": "telemetry", "precision": "ms"}
    assert request.headers["Authorization"] == "Token tok"
    assert request.content.decode().splitlines() == lines
    with pytest.raises(TelemetryWriteError) as unauthorized:
        sink.write(lines)
    assert unauthorized.value.retryable  # a token fixed later must not lose the buffer
    with pytest.raises(TelemetryWriteError) as bad:
        sink.write(lines)
    assert not bad.value.retryable and bad.value.code == "INFLUX_REJECTED"
    sink.close()
