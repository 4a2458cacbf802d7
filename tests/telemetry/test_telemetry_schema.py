"""Tests of the telemetry schema constructors and the line-protocol encoder (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from telemetry import schema
from telemetry.errors import PointError
from telemetry.schema import Point, cold_chain_point, door_point, locker_health_point, to_line

AT = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
AT_NS = 1_796_000_523_456_789_000


def test_timestamps_are_exact_integer_nanoseconds() -> None:
    assert schema.to_ns(AT) == AT_NS
    assert schema.to_ns(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    other_zone = AT.astimezone(timezone(timedelta(hours=8)))
    assert schema.to_ns(other_zone) == AT_NS
    assert schema.from_ns(AT_NS) == AT
    with pytest.raises(PointError):
        schema.to_ns(datetime(2026, 1, 1))  # naive: whose midnight?


def test_cold_chain_line_with_explicit_precision() -> None:
    p = cold_chain_point(
        locker="L1", compartment="0-3", zone="chilled", sensor="28-0001", celsius=4, at=AT
    )
    assert p.fields["celsius"] == 4.0
    assert isinstance(p.fields["celsius"], float)
    line = "cold_chain,compartment=0-3,locker=L1,sensor=28-0001,zone=chilled celsius=4.0"
    assert to_line(p) == f"{line} {AT_NS}"
    assert to_line(p, "s") == f"{line} {AT_NS // 10**9}"
    assert to_line(p, "ms") == f"{line} {AT_NS // 10**6}"
    with pytest.raises(PointError):
        to_line(p, "m")  # type: ignore[arg-type]


def test_humidity_is_optional_and_zone_is_checked() -> None:
    p = cold_chain_point(
        locker="L1", compartment="0-1", zone="frozen", sensor="m1", celsius=-19.5,
        humidity=61.25, at=AT,
    )  # fmt: skip
    assert to_line(p, "s").split(" ")[1] == "celsius=-19.5,humidity=61.25"
    with pytest.raises(PointError) as info:
        cold_chain_point(locker="L", compartment="0-1", zone="warm", sensor="s", celsius=1, at=AT)
    assert info.value.code == "BAD_POINT"


def test_door_and_health_field_types() -> None:
    assert to_line(door_point(locker="L1", compartment="0-1", is_open=True, at=0)) == (
        'door,compartment=0-1,locker=L1 state="open" 0'
    )
    health = locker_health_point(
        locker="L1", outbox_depth=3, mqtt_connected=True, uptime_s=12, dropped_points=0, at=0,
        agent_version="0.1.0",
    )  # fmt: skip
    assert to_line(health) == (
        "locker_health,locker=L1 outbox_depth=3i,mqtt_connected=true,uptime_s=12i,"
        'dropped_points=0i,agent_version="0.1.0" 0'
    )


def test_escaping_follows_line_protocol_rules() -> None:
    p = Point(
        "my meas,x",
        {"tag key": "a,b=c d", "empty": ""},
        {"f=1": 'say "hi" \\ ok', "n": -7, "b": False},
        5,
    )
    assert to_line(p) == (
        r"my\ meas\,x,tag\ key=a\,b\=c\ d "
        r'f\=1="say \"hi\" \\ ok",n=-7i,b=false 5'
    )


@pytest.mark.parametrize(
    "point",
    [
        Point("m", {"t": "a\nb"}, {"f": 1.0}, 0),
        Point("m", {"t": "ends\\"}, {"f": 1.0}, 0),
        Point("m", {}, {"f": float("nan")}, 0),
        Point("m", {}, {"f": float("inf")}, 0),
        Point("m", {}, {}, 0),
        Point("", {}, {"f": 1.0}, 0),
        Point("m", {}, {"f": b"bytes"}, 0),  # type: ignore[dict-item]
    ],
)
def test_unrepresentable_points_are_refused(point: Point) -> None:
    with pytest.raises(PointError):
        to_line(point)


def test_every_measurement_declares_units_and_constructors_use_declared_names() -> None:
    for m in schema.MEASUREMENTS.values():
        assert m.fields
        assert all(unit for _, unit in m.fields.values())
    p = cold_chain_point(locker="L", compartment="0-1", zone="chilled", sensor="s", celsius=1,
                         humidity=50, at=0)  # fmt: skip
    assert set(p.tags) == set(schema.COLD_CHAIN.tags)
    assert set(p.fields) <= set(schema.COLD_CHAIN.fields)
    d = door_point(locker="L", compartment="0-1", is_open=False, at=0)
    assert set(d.tags) == set(schema.DOOR.tags)
    assert set(d.fields) <= set(schema.DOOR.fields)


def test_to_lines_is_newline_terminated() -> None:
    pts = [door_point(locker="L", compartment=f"0-{i}", is_open=False, at=i) for i in (1, 2)]
    body = schema.to_lines(pts)
    assert body.endswith("\n")
    assert body.count("\n") == 2
