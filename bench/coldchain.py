"""Benchmark: excursion rules over 1,000 compartments × 24 h at one reading per minute, and the
latency of the dashboard's chart query against the real InfluxDB.

Run: ``.venv/bin/python bench/coldchain.py`` (InfluxDB on 127.0.0.1:8086, or TEST_INFLUX_URL).
Named coldchain.py, not telemetry.py: a bench module named like the ``telemetry`` package
would clash with it under mypy (``make typecheck``) and on ``sys.path``.
Baselines measured in the same run:

- rules: one beat scan (every compartment gets its newest reading, state round-tripped through
  JSON as the platform stores it) against the stateless alternative of re-evaluating each
  compartment's whole 24 h window on every scan;
- chart: the downsampled query the page uses (GROUP BY time, ~300 buckets) against fetching
  the raw 24 h of readings.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from firmware_sim.profiles import compressor_failure, door_spikes, steady  # noqa: E402
from telemetry import queries  # noqa: E402
from telemetry.influx import InfluxClient  # noqa: E402
from telemetry.rules import CompartmentState, Evaluator  # noqa: E402
from telemetry.schema import cold_chain_point  # noqa: E402
from telemetry.stats import Reading  # noqa: E402

COMPARTMENTS = 1_000
MINUTES = 24 * 60
SCANS = 180  # beat scans timed (one per simulated minute)
LOOKBACK = 90  # minutes each scan reads (TELEMETRY_SCAN_LOOKBACK_MINUTES)
NS_MIN = 60 * 1_000_000_000
T0 = 1_795_910_400 * 1_000_000_000  # a UTC midnight
INFLUX_URL = os.environ.get("TEST_INFLUX_URL", "http://127.0.0.1:8086")


def profile_for(i: int) -> tuple[str, Callable[[float], float]]:
    """Mostly healthy compartments, some door spikes, 5 % with a compressor failure."""
    rng = random.Random(i)
    if i % 20 == 0:
        start = rng.uniform(0, 20 * 3600)
        return "chilled", lambda s: compressor_failure(3.0, start, 0.3, 12.5, s)
    if i % 3 == 0:
        return "frozen", lambda s: steady(-19.5, s)
    every = rng.choice([600, 900, 1800])
    return "chilled", lambda s: door_spikes(3.0, 4.5, every, 120, s)


def make_series() -> list[tuple[str, list[Reading]]]:
    out = []
    for i in range(COMPARTMENTS):
        zone, fn = profile_for(i)
        readings = [Reading(T0 + m * NS_MIN, round(fn(m * 60.0), 2)) for m in range(MINUTES)]
        out.append((zone, readings))
    return out


def bench_rules() -> dict[str, float]:
    series = make_series()
    evaluator = Evaluator()

    started = time.perf_counter()
    one_pass_events = 0
    for i, (zone, readings) in enumerate(series):
        one_pass_events += len(evaluator.evaluate(CompartmentState("L", str(i), zone), readings))
    one_pass_s = time.perf_counter() - started

    # Incremental, as beat runs it: each scan feeds the readings newer than each state (one
    # per compartment), with the state stored as JSON between scans (what ColdChainState
    # holds). SCANS scans are timed; their events must equal a one-pass evaluation.
    stored = [json.dumps(CompartmentState("L", str(i), z).to_dict())
              for i, (z, _) in enumerate(series)]  # fmt: skip
    incremental_events = 0
    scan_times = []
    for minute in range(SCANS):
        t = time.perf_counter()
        for i, (_zone, readings) in enumerate(series):
            state = CompartmentState.from_dict(json.loads(stored[i]))
            incremental_events += len(evaluator.evaluate(state, readings[minute : minute + 1]))
            stored[i] = json.dumps(state.to_dict())
        scan_times.append(time.perf_counter() - t)
    expected = sum(
        len(evaluator.evaluate(CompartmentState("L", str(i), zone), readings[:SCANS]))
        for i, (zone, readings) in enumerate(series)
    )
    assert incremental_events == expected, (incremental_events, expected)

    # Baseline: a stateless scan re-evaluates every compartment's last 24 h from scratch.
    samples = 5
    t = time.perf_counter()
    for _ in range(samples):
        for i, (zone, readings) in enumerate(series):
            evaluator.evaluate(CompartmentState("L", str(i), zone), readings)
    stateless_scan_s = (time.perf_counter() - t) / samples

    return {
        "readings": COMPARTMENTS * MINUTES,
        "events": one_pass_events,
        "one_pass_s": one_pass_s,
        "readings_per_s": COMPARTMENTS * MINUTES / one_pass_s,
        "scans": SCANS,
        "scan_p50_ms": statistics.median(scan_times) * 1000,
        "scan_p99_ms": sorted(scan_times)[int(len(scan_times) * 0.99)] * 1000,
        "stateless_scan_ms": stateless_scan_s * 1000,
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def bench_chart(compartments: int = 50, runs: int = 200) -> dict[str, float]:
    database = f"bench_{uuid.uuid4().hex[:10]}"
    with InfluxClient(INFLUX_URL, database=database, timeout_s=30) as influx:
        influx.create_database()
        try:
            points = []
            for c in range(compartments):
                zone, fn = profile_for(c)
                for m in range(MINUTES):
                    points.append(
                        cold_chain_point(
                            locker=f"L{c // 10}",
                            compartment=f"0-{c % 10 + 1}",
                            zone=zone,
                            sensor=f"s{c}",
                            celsius=round(fn(m * 60.0), 2),
                            at=T0 + m * NS_MIN,
                        )
                    )
            t = time.perf_counter()
            for start in range(0, len(points), 5000):
                influx.write(points[start : start + 5000], precision="s")
            write_s = time.perf_counter() - t

            rng = random.Random(7)
            chart, raw = [], []
            end = T0 + MINUTES * NS_MIN
            for _ in range(runs):
                c = rng.randrange(compartments)
                locker, comp = f"L{c // 10}", f"0-{c % 10 + 1}"
                t = time.perf_counter()
                series = queries.chart_series(
                    influx, locker=locker, compartment=comp, start_ns=T0, end_ns=end
                )
                chart.append(time.perf_counter() - t)
                assert len(series.points) == 288
                t = time.perf_counter()
                readings = queries.raw_readings(
                    influx, locker=locker, compartment=comp, start_ns=T0, end_ns=end
                )
                raw.append(time.perf_counter() - t)
                assert len(readings) == MINUTES
            t = time.perf_counter()
            latest = queries.latest_per_compartment(influx, since_ns=T0)
            latest_s = time.perf_counter() - t
            assert len(latest) == compartments
        finally:
            influx.drop_database()
    return {
        "points": len(points),
        "write_points_per_s": len(points) / write_s,
        "chart_p50_ms": percentile(chart, 0.5) * 1000,
        "chart_p99_ms": percentile(chart, 0.99) * 1000,
        "raw_p50_ms": percentile(raw, 0.5) * 1000,
        "raw_p99_ms": percentile(raw, 0.99) * 1000,
        "latest_all_ms": latest_s * 1000,
    }


def bench_scan_read(runs: int = 7) -> dict[str, float]:
    """The scan's one InfluxQL statement: every compartment's last 90 minutes."""
    database = f"bench_{uuid.uuid4().hex[:10]}"
    with InfluxClient(INFLUX_URL, database=database, timeout_s=60) as influx:
        influx.create_database()
        try:
            points = [
                cold_chain_point(locker=f"L{c // 16}", compartment=f"0-{c % 16 + 1}",
                                 zone="chilled", sensor=f"s{c}", celsius=3.0 + (m % 7) / 10,
                                 at=T0 + m * NS_MIN)
                for c in range(COMPARTMENTS)
                for m in range(LOOKBACK)
            ]  # fmt: skip
            for start in range(0, len(points), 5000):
                influx.write(points[start : start + 5000], precision="s")
            end = T0 + LOOKBACK * NS_MIN
            window, scan = [], []
            for _ in range(runs):
                # Baseline: every compartment's whole window, judged or not.
                t = time.perf_counter()
                got = queries.readings_since(influx, since_ns=T0 - 1, until_ns=end)
                window.append(time.perf_counter() - t)
                assert sum(len(v) for v in got.values()) == len(points)
                # What the scan does: who has new data (one row each), then one read of the
                # last minute (every state was judged up to the minute before).
                t = time.perf_counter()
                last = queries.last_times(influx, since_ns=T0 - 1, until_ns=end)
                new = queries.readings_since(influx, since_ns=end - 2 * NS_MIN, until_ns=end)
                scan.append(time.perf_counter() - t)
                assert len(last) == COMPARTMENTS
                assert sum(len(v) for v in new.values()) == COMPARTMENTS
        finally:
            influx.drop_database()
    return {
        "rows": len(points),
        "scan_p50_ms": percentile(scan, 0.5) * 1000,
        "scan_max_ms": max(scan) * 1000,
        "window_p50_ms": percentile(window, 0.5) * 1000,
        "window_max_ms": max(window) * 1000,
    }


def main() -> None:
    rules = bench_rules()
    print(
        f"rules: {rules['readings']:,} readings ({COMPARTMENTS} compartments × 24 h × 1/min), "
        f"{rules['events']} events"
    )
    print(
        f"  one pass over the day:      {rules['one_pass_s']:.2f} s "
        f"({rules['readings_per_s']:,.0f} readings/s)"
    )
    print(
        f"  incremental, per beat scan: p50 {rules['scan_p50_ms']:.1f} ms, "
        f"p99 {rules['scan_p99_ms']:.1f} ms over {rules['scans']} scans "
        "(1 new reading per compartment, state through JSON)"
    )
    print(
        f"  baseline stateless scan:    {rules['stateless_scan_ms']:.0f} ms per scan "
        f"(re-evaluate 24 h × {COMPARTMENTS}) → "
        f"{rules['stateless_scan_ms'] / rules['scan_p50_ms']:.0f}× the incremental scan"
    )
    chart = bench_chart()
    print(
        f"chart query (InfluxDB at {INFLUX_URL}, {chart['points']:,} points, "
        f"written at {chart['write_points_per_s']:,.0f} points/s):"
    )
    print(
        f"  24 h downsampled to 5 min (288 buckets): p50 {chart['chart_p50_ms']:.1f} ms, "
        f"p99 {chart['chart_p99_ms']:.1f} ms"
    )
    print(
        f"  baseline raw 24 h (1,440 rows):          p50 {chart['raw_p50_ms']:.1f} ms, "
        f"p99 {chart['raw_p99_ms']:.1f} ms"
    )
    print(f"  latest reading of all 50 compartments:   {chart['latest_all_ms']:.1f} ms")
    read = bench_scan_read()
    print(
        f"scan read ({COMPARTMENTS} compartments, {LOOKBACK}-minute window, {read['rows']:,} rows):"
    )
    print(
        f"  last-reading probe + new readings only: p50 {read['scan_p50_ms']:.0f} ms, "
        f"max {read['scan_max_ms']:.0f} ms"
    )
    print(
        f"  baseline, the whole window every scan:  p50 {read['window_p50_ms']:.0f} ms, "
        f"max {read['window_max_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
