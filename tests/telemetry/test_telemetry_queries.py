"""Tests of the InfluxQL queries and the retention set-up against the real InfluxDB."""

from __future__ import annotations

import pytest

from firmware_sim.profiles import compressor_failure
from telemetry import queries
from telemetry.influx import InfluxClient
from telemetry.retention import ROLLUPS, apply_retention, backfill_rollups
from telemetry.schema import cold_chain_point, door_point, locker_health_point
from telemetry.settings import TelemetrySettings
from telemetry.stats import Reading, summarize

T0 = 1_795_910_400 * 1_000_000_000  # midnight UTC, so 5-minute buckets align
MIN = 60 * 1_000_000_000


def _write_day(influx: InfluxClient) -> list[Reading]:
    """Two lockers: L1 0-1 chilled fails after 10 h; L1 0-9 frozen steady; L2 0-1 steady."""
    points = []
    chilled = []
    for i in range(24 * 60):
        c = round(compressor_failure(3.0, 600 * 60, 0.1, 11.0, i * 60), 3)
        chilled.append(Reading(T0 + i * MIN, c))
        points.append(
            cold_chain_point(
                locker="L1",
                compartment="0-1",
                zone="chilled",
                sensor="28-1",
                celsius=c,
                humidity=60.0,
                at=T0 + i * MIN,
            )
        )
        points.append(
            cold_chain_point(
                locker="L1",
                compartment="0-9",
                zone="frozen",
                sensor="m1",
                celsius=-19.5,
                at=T0 + i * MIN,
            )
        )
        if i % 5 == 0:
            points.append(
                cold_chain_point(
                    locker="L2",
                    compartment="0-1",
                    zone="chilled",
                    sensor="28-2",
                    celsius=3.5,
                    at=T0 + i * MIN,
                )
            )
    for i in range(5):
        points.append(
            door_point(locker="L1", compartment="0-1", is_open=i % 2 == 0, at=T0 + (100 + i) * MIN)
        )
    points.append(
        locker_health_point(
            locker="L1",
            outbox_depth=2,
            mqtt_connected=True,
            uptime_s=100,
            dropped_points=0,
            agent_version="0.3.1",
            at=T0,
        )
    )
    points.append(
        locker_health_point(
            locker="L1",
            outbox_depth=7,
            mqtt_connected=False,
            uptime_s=160,
            dropped_points=1,
            at=T0 + MIN,
        )
    )
    for start in range(0, len(points), 5000):
        influx.write(points[start : start + 5000], precision="s")
    return chilled  # fmt: skip


def test_latest_reading_per_compartment(influx: InfluxClient) -> None:
    _write_day(influx)
    latest = queries.latest_per_compartment(influx)
    assert [(r.locker, r.compartment, r.zone) for r in latest] == [
        ("L1", "0-1", "chilled"),
        ("L1", "0-9", "frozen"),
        ("L2", "0-1", "chilled"),
    ]
    assert latest[0].t_ns == T0 + (24 * 60 - 1) * MIN
    assert latest[0].celsius == 11.0
    assert latest[0].humidity == 60.0
    assert latest[0].sensor == "28-1"
    assert latest[2].t_ns == T0 + (24 * 60 - 5) * MIN
    only_l2 = queries.latest_per_compartment(influx, locker="L2")
    assert [r.locker for r in only_l2] == ["L2"]


def test_chart_series_downsamples_to_round_buckets(influx: InfluxClient) -> None:
    chilled = _write_day(influx)
    end = T0 + 24 * 60 * MIN
    chart = queries.chart_series(influx, locker="L1", compartment="0-1", start_ns=T0, end_ns=end)
    assert chart.step_s == 300  # 86400 s / 300 points = 288 s, rounded up to 5 min
    assert len(chart.points) == 288
    first_bucket = [r.celsius for r in chilled[:5]]
    assert chart.points[0].t_ns == T0
    assert chart.points[0].mean == pytest.approx(sum(first_bucket) / 5)
    assert max(p.high for p in chart.points) == 11.0
    assert queries.bucket_seconds(0, 3600 * 10**9) == 60
    assert queries.bucket_seconds(0, 30 * 86400 * 10**9) == 21600


def test_readings_since_feeds_the_evaluator_by_compartment(influx: InfluxClient) -> None:
    chilled = _write_day(influx)
    since = T0 + (24 * 60 - 11) * MIN
    got = queries.readings_since(influx, since_ns=since)
    assert set(got) == {("L1", "0-1", "chilled"), ("L1", "0-9", "frozen"), ("L2", "0-1", "chilled")}
    assert got["L1", "0-1", "chilled"] == chilled[-10:]  # strictly after `since`
    assert len(got["L2", "0-1", "chilled"]) == 2
    frozen_only = queries.readings_since(influx, since_ns=since, zones=("frozen",))
    assert list(frozen_only) == [("L1", "0-9", "frozen")]


def test_last_times_give_one_row_per_compartment(influx: InfluxClient) -> None:
    _write_day(influx)
    since = T0 + (24 * 60 - 11) * MIN
    got = queries.last_times(influx, since_ns=since)
    assert got == {
        ("L1", "0-1", "chilled"): T0 + (24 * 60 - 1) * MIN,
        ("L1", "0-9", "frozen"): T0 + (24 * 60 - 1) * MIN,
        ("L2", "0-1", "chilled"): T0 + (24 * 60 - 5) * MIN,
    }
    assert queries.last_times(influx, since_ns=T0 + 24 * 60 * MIN) == {}


def test_door_events_and_health(influx: InfluxClient) -> None:
    _write_day(influx)
    doors = queries.door_events(influx, locker="L1", start_ns=T0, end_ns=T0 + 200 * MIN)
    assert [(d.t_ns - T0) // MIN for d in doors] == [104, 103, 102, 101, 100]
    assert [d.state for d in doors][:2] == ["open", "closed"]
    health = queries.locker_health(influx)
    assert list(health) == ["L1"]
    snap = health["L1"]
    assert (snap.t_ns, snap.outbox_depth, snap.mqtt_connected) == (T0 + MIN, 7, False)
    assert snap.agent_version == "0.3.1"


def test_batch_summary_spans_legs(influx: InfluxClient) -> None:
    chilled = _write_day(influx)
    legs = [
        queries.Leg("L1", "0-1", T0 + 500 * MIN, T0 + 700 * MIN),
        queries.Leg("L2", "0-1", T0 + 700 * MIN, T0 + 800 * MIN),
    ]
    summary = queries.batch_summary(influx, legs, low=0.0, high=4.0)
    expected = summarize(
        chilled[500:700] + [Reading(T0 + i * MIN, 3.5) for i in range(700, 800, 5)],
        low=0.0, high=4.0,
    )  # fmt: skip
    assert summary == expected
    assert summary is not None
    assert summary.max_c == 11.0  # the ramp from minute 600 reaches its 11 °C cap
    assert summary.mkt_c > summary.mean_c
    assert summary.seconds_above > 0


def test_retention_policies_and_rollups(influx: InfluxClient) -> None:
    settings = TelemetrySettings(_env_file=None, influx_database=influx.database)
    names = apply_retention(influx, settings)
    assert sorted(names) == sorted(influx.continuous_queries())
    assert apply_retention(influx, settings) == names  # idempotent
    policies = {p["name"]: p for p in influx.retention_policies()}
    assert policies["raw"]["default"] is True
    assert policies["raw"]["duration"] == "720h0m0s"
    assert policies["rollup_5m"]["duration"] == "17520h0m0s"

    # Written without rp, so into the default (raw) policy; then backfilled into rollups.
    _write_day(influx)
    backfill_rollups(influx, settings, T0, T0 + 24 * 60 * MIN)
    (rolled,) = influx.query(
        'SELECT celsius, celsius_min, celsius_max FROM "rollup_5m"."cold_chain_5m" '
        "WHERE locker = 'L1' AND compartment = '0-1'"
    )
    assert len(rolled.values) == 288
    assert rolled.values[-1][2:] == [11.0, 11.0]
    assert {r.target for r in ROLLUPS} == {"cold_chain_5m", "locker_health_5m", "door_5m"}
    (doors,) = influx.query('SELECT sum(changes) FROM "rollup_5m"."door_5m"')
    assert doors.values[0][1] == 5
