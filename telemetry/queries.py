"""InfluxQL queries the platform needs: latest readings, chart series, raw windows, summaries.

InfluxQL only (no Flux), so the same statements run on 1.x and on 2.x's v1 compatibility API.
Every name comes from :mod:`telemetry.schema`; every value spliced into a statement is either an
integer timestamp or goes through ``quote_literal`` / ``quote_ident``.
"""

# ruff: noqa: S608 - InfluxQL, not SQL: every value spliced in is int() or quote_literal()'d
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from telemetry import schema as s
from telemetry.influx import InfluxClient, quote_ident, quote_literal
from telemetry.stats import DEFAULT_DELTA_H, Reading, Summary, summarize

NS_PER_S = 1_000_000_000
# Chart buckets are rounded up to one of these (seconds), so axes read naturally.
_NICE_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def _where(*clauses: str) -> str:
    return " WHERE " + " AND ".join(c for c in clauses if c) if any(clauses) else ""


def _eq(tag: str, value: str | None) -> str:
    return f"{quote_ident(tag)} = {quote_literal(value)}" if value is not None else ""


def _time_range(start_ns: int | None, end_ns: int | None, *, after: bool = False) -> str:
    parts = []
    if start_ns is not None:
        parts.append(f"time {'>' if after else '>='} {int(start_ns)}")
    if end_ns is not None:
        parts.append(f"time < {int(end_ns)}")
    return " AND ".join(parts)


def _zones(zones: Iterable[str]) -> str:
    names = [f"{quote_ident(s.TAG_ZONE)} = {quote_literal(z)}" for z in zones]
    return "(" + " OR ".join(names) + ")" if names else ""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class LatestReading:
    locker: str
    compartment: str
    zone: str
    sensor: str | None
    t_ns: int
    celsius: float
    humidity: float | None


def latest_per_compartment(
    client: InfluxClient, *, locker: str | None = None, since_ns: int | None = None
) -> list[LatestReading]:
    """The newest cold-chain reading of every compartment (optionally of one locker)."""
    # A selector (last) plus plain fields returns the fields of that same point.
    q = (
        f"SELECT last({s.F_CELSIUS}) AS celsius, {s.F_HUMIDITY}, {quote_ident(s.TAG_SENSOR)} "
        f"FROM {quote_ident(s.COLD_CHAIN.name)}"
        f"{_where(_eq(s.TAG_LOCKER, locker), _time_range(since_ns, None))} "
        f"GROUP BY {quote_ident(s.TAG_LOCKER)}, {quote_ident(s.TAG_COMPARTMENT)}, "
        f"{quote_ident(s.TAG_ZONE)}"
    )
    out = []
    for series in client.query(q):
        for row in series.rows():
            out.append(
                LatestReading(
                    locker=series.tags[s.TAG_LOCKER],
                    compartment=series.tags[s.TAG_COMPARTMENT],
                    zone=series.tags[s.TAG_ZONE],
                    sensor=row.get(s.TAG_SENSOR),
                    t_ns=int(row["time"]),
                    celsius=float(row["celsius"]),
                    humidity=_float(row.get(s.F_HUMIDITY)),
                )
            )
    return sorted(out, key=lambda r: (r.locker, r.compartment))


def readings_since(
    client: InfluxClient,
    *,
    since_ns: int,
    until_ns: int | None = None,
    zones: Sequence[str] = (s.ZONE_CHILLED, s.ZONE_FROZEN),
    locker: str | None = None,
) -> dict[tuple[str, str, str], list[Reading]]:
    """Raw readings newer than ``since_ns`` keyed by (locker, compartment, zone), oldest first.

    One statement for the whole fleet: what the excursion scan feeds the evaluator.
    """
    where = _where(
        _time_range(since_ns, until_ns, after=True), _zones(zones), _eq(s.TAG_LOCKER, locker)
    )
    q = (
        f"SELECT {s.F_CELSIUS} FROM {quote_ident(s.COLD_CHAIN.name)}{where}"
        f" GROUP BY {quote_ident(s.TAG_LOCKER)}, {quote_ident(s.TAG_COMPARTMENT)}, "
        f"{quote_ident(s.TAG_ZONE)}"
    )
    out: dict[tuple[str, str, str], list[Reading]] = {}
    for series in client.query(q):
        key = (series.tags[s.TAG_LOCKER], series.tags[s.TAG_COMPARTMENT], series.tags[s.TAG_ZONE])
        out.setdefault(key, []).extend(
            Reading(int(t), float(c)) for t, c in series.values if c is not None
        )
    return out


def last_times(
    client: InfluxClient,
    *,
    since_ns: int,
    until_ns: int | None = None,
    zones: Sequence[str] = (s.ZONE_CHILLED, s.ZONE_FROZEN),
) -> dict[tuple[str, str, str], int]:
    """(locker, compartment, zone) → time of its newest reading in the window: one row per
    compartment, so the scan learns who has new data without fetching every reading."""
    where = _where(_time_range(since_ns, until_ns, after=True), _zones(zones))
    q = (
        f"SELECT last({s.F_CELSIUS}) FROM {quote_ident(s.COLD_CHAIN.name)}{where}"
        f" GROUP BY {quote_ident(s.TAG_LOCKER)}, {quote_ident(s.TAG_COMPARTMENT)}, "
        f"{quote_ident(s.TAG_ZONE)}"
    )
    return {
        (series.tags[s.TAG_LOCKER], series.tags[s.TAG_COMPARTMENT], series.tags[s.TAG_ZONE]): int(
            series.values[0][0]
        )
        for series in client.query(q)
        if series.values
    }


def raw_readings(
    client: InfluxClient, *, locker: str, compartment: str, start_ns: int, end_ns: int
) -> list[Reading]:
    q = (
        f"SELECT {s.F_CELSIUS} FROM {quote_ident(s.COLD_CHAIN.name)}"
        f"{_where(_eq(s.TAG_LOCKER, locker), _eq(s.TAG_COMPARTMENT, compartment), _time_range(start_ns, end_ns))}"  # noqa: E501
    )
    return [
        Reading(int(t), float(c))
        for series in client.query(q)
        for t, c in series.values
        if c is not None
    ]


def bucket_seconds(start_ns: int, end_ns: int, target_points: int = 300) -> int:
    """A round GROUP BY time() step giving at most about ``target_points`` buckets."""
    wanted = max(1, (end_ns - start_ns) // NS_PER_S // max(1, target_points))
    return next((step for step in _NICE_STEPS_S if step >= wanted), _NICE_STEPS_S[-1])


@dataclass(frozen=True)
class ChartPoint:
    t_ns: int
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class ChartSeries:
    locker: str
    compartment: str
    step_s: int
    points: list[ChartPoint]


def chart_series(
    client: InfluxClient,
    *,
    locker: str,
    compartment: str,
    start_ns: int,
    end_ns: int,
    target_points: int = 300,
) -> ChartSeries:
    """Mean/min/max per time bucket for one compartment: what the dashboard chart draws."""
    step = bucket_seconds(start_ns, end_ns, target_points)
    where = _where(
        _eq(s.TAG_LOCKER, locker),
        _eq(s.TAG_COMPARTMENT, compartment),
        _time_range(start_ns, end_ns),
    )
    q = (
        f"SELECT mean({s.F_CELSIUS}), min({s.F_CELSIUS}), max({s.F_CELSIUS}) "
        f"FROM {quote_ident(s.COLD_CHAIN.name)}{where} GROUP BY time({step}s) fill(none)"
    )
    points = [
        ChartPoint(int(t), float(mean), float(low), float(high))
        for series in client.query(q)
        for t, mean, low, high in series.values
        if mean is not None
    ]
    return ChartSeries(locker, compartment, step, points)


@dataclass(frozen=True)
class DoorEvent:
    compartment: str
    t_ns: int
    state: str


def door_events(
    client: InfluxClient, *, locker: str, start_ns: int, end_ns: int, limit: int = 200
) -> list[DoorEvent]:
    """Door changes of one locker in a window, newest first."""
    q = (
        f"SELECT {s.F_DOOR_STATE} FROM {quote_ident(s.DOOR.name)}"
        f"{_where(_eq(s.TAG_LOCKER, locker), _time_range(start_ns, end_ns))}"
        f" GROUP BY {quote_ident(s.TAG_COMPARTMENT)} ORDER BY time DESC LIMIT {int(limit)}"
    )
    events = [
        DoorEvent(series.tags[s.TAG_COMPARTMENT], int(t), str(state))
        for series in client.query(q)
        for t, state in series.values
    ]
    return sorted(events, key=lambda e: e.t_ns, reverse=True)[:limit]


@dataclass(frozen=True)
class HealthSnapshot:
    locker: str
    t_ns: int
    outbox_depth: int | None
    mqtt_connected: bool | None
    uptime_s: int | None
    dropped_points: int | None
    agent_version: str | None


def locker_health(
    client: InfluxClient, *, since_ns: int | None = None
) -> dict[str, HealthSnapshot]:
    """The newest health point of every locker (agent version from its newest report)."""
    q = (
        f"SELECT last({s.F_UPTIME_S}) AS uptime_s, {s.F_OUTBOX_DEPTH}, {s.F_MQTT_CONNECTED}, "
        f"{s.F_DROPPED_POINTS} FROM {quote_ident(s.LOCKER_HEALTH.name)}"
        f"{_where(_time_range(since_ns, None))} GROUP BY {quote_ident(s.TAG_LOCKER)}; "
        f"SELECT last({s.F_AGENT_VERSION}) FROM {quote_ident(s.LOCKER_HEALTH.name)}"
        f"{_where(_time_range(since_ns, None))} GROUP BY {quote_ident(s.TAG_LOCKER)}"
    )
    health, versions = client.query_statements(q)
    version_of = {v.tags[s.TAG_LOCKER]: v.values[0][1] for v in versions if v.values}
    out = {}
    for series in health:
        row = series.rows()[0]
        locker = series.tags[s.TAG_LOCKER]
        out[locker] = HealthSnapshot(
            locker=locker,
            t_ns=int(row["time"]),
            outbox_depth=_int(row.get(s.F_OUTBOX_DEPTH)),
            mqtt_connected=row.get(s.F_MQTT_CONNECTED),
            uptime_s=_int(row.get("uptime_s")),
            dropped_points=_int(row.get(s.F_DROPPED_POINTS)),
            agent_version=version_of.get(locker),
        )
    return out


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Leg:
    """Where a batch sat, and when: one compartment between deposit and pickup."""

    locker: str
    compartment: str
    start_ns: int
    end_ns: int


def batch_summary(
    client: InfluxClient,
    legs: Sequence[Leg],
    *,
    low: float | None,
    high: float | None,
    delta_h: float = DEFAULT_DELTA_H,
) -> Summary | None:
    """Min, max, mean, MKT and time out of [low, high] over every leg of a batch.

    InfluxQL has no exp(), so MKT is computed here from the raw readings of each leg.
    """
    readings: list[Reading] = []
    for leg in legs:
        readings += raw_readings(
            client,
            locker=leg.locker,
            compartment=leg.compartment,
            start_ns=leg.start_ns,
            end_ns=leg.end_ns,
        )
    return summarize(readings, low=low, high=high, delta_h=delta_h)
