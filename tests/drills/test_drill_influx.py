"""Drill: InfluxDB stopped while lockers report; every point arrives once after it returns."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import schema
from edge.agent.store import Store
from edge.agent.telemetry import InfluxV1Sink, TelemetryBuffer, TelemetryForwarder
from tests.drills.support import Drill, drill_seconds
from tests.edge.agent.support import OwnInfluxd, influx_create_db, influx_query, wait_until

LOCKERS = 3
PERIOD_S = 0.05  # a sample per locker every 50 ms: 20 a second each
OUTAGE_S = drill_seconds("influx_outage", 30.0)  # DRILL_INFLUX_OUTAGE_S=300 for minutes
DB = "drill_telemetry"


class Reporter:
    """One locker's telemetry path, as the agent wires it: its SQLite buffer and forwarder,
    fed by a sampler that keeps going whatever InfluxDB does."""

    def __init__(self, root: Path, locker_id: str, influx_url: str) -> None:
        self.locker_id = locker_id
        self.store = Store(root / f"{locker_id}.sqlite3")
        self.buffer = TelemetryBuffer(self.store, 1_000_000)
        self.forwarder = TelemetryForwarder(
            self.buffer,
            InfluxV1Sink(influx_url, DB, timeout_s=1.0),
            batch_size=200,
            flush_interval_s=0.1,
            backoff_max_s=1.0,
        ).start()
        self.sent: list[int] = []  # timestamps (ms) of the points sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            at = int(time.time() * 1000)
            if not self.sent or at > self.sent[-1]:
                self.buffer.append(
                    [
                        schema.cold_chain(
                            self.locker_id,
                            "0-1",
                            "chilled",
                            "probe",
                            at,
                            3.0 + (at % 1000) / 1000,
                            60.0,
                        )
                    ]
                )
                self.sent.append(at)
            self._stop.wait(PERIOD_S)  # the sampling period, as the agent's sampler

    def stop_sampling(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def close(self) -> None:
        self.stop_sampling()
        self.forwarder.stop()
        self.store.close()


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[OwnInfluxd]:
    server = OwnInfluxd(tmp_path / "influx")
    server.start()
    influx_create_db(server.url, DB)
    yield server
    server.kill()


@pytest.mark.slow
def test_influxdb_stopped_while_lockers_report(
    tmp_path: Path, influx: OwnInfluxd, drill: Drill
) -> None:
    drill.title = f"InfluxDB stopped for {OUTAGE_S:g} s while lockers report"
    lockers = [Reporter(tmp_path, f"drill-{n}", influx.url) for n in range(LOCKERS)]
    pause = threading.Event()
    try:
        wait_until(lambda: all(lk.forwarder.written >= 10 for lk in lockers), 30, "points landing")
        influx.kill()
        began = time.monotonic()
        drill.fault(
            f"influxd SIGKILLed for {OUTAGE_S:g} s while {LOCKERS} lockers sample "
            f"every {PERIOD_S * 1000:g} ms"
        )
        wait_until(lambda: all(lk.forwarder.last_error for lk in lockers), 20, "writers failing")
        pause.wait(OUTAGE_S - (time.monotonic() - began))  # the outage itself, not a poll
        held = [lk.store.telemetry_depth() for lk in lockers]
        drill.note(f"points held on the lockers' disks at the end of the outage: {held}")
        assert min(held) >= OUTAGE_S / PERIOD_S / 2, "the lockers did not keep sampling"
        influx.start()
        for lk in lockers:  # a little more life after the return, then stop and drain
            lk.stop_sampling()
        wait_until(
            lambda: all(lk.store.telemetry_depth() == 0 for lk in lockers),
            120,
            "the backlogs drained",
        )
    finally:
        for lk in lockers:
            lk.close()

    total_sent = total_stored = 0
    for lk in lockers:
        where = f"WHERE locker = '{lk.locker_id}'"  # our own ids
        rows = influx_query(influx.url, DB, "SELECT celsius FROM cold_chain " + where)  # noqa: S608
        stored = [row[0] for row in rows]
        drill.check(f"{lk.locker_id}: points in InfluxDB = points sampled", lk.sent, stored)
        total_sent, total_stored = total_sent + len(lk.sent), total_stored + len(stored)
    drill.check("points sampled / stored, all lockers", total_sent, total_stored)
    drill.done()
