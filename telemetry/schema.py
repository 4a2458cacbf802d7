"""The telemetry schema in one place (measurements, tags, fields, units) and the line encoder.

Imported by the edge writer (which produces points) and by the platform queries (which read
them), so names are never retyped. Pure: stdlib only, nothing done at import time.

Measurements (timestamps are the *sampling* time, never the arrival time)::

    cold_chain     tags locker, compartment, zone, sensor   fields celsius (°C, float),
                                                                   humidity (%RH, float, optional)
    door           tags locker, compartment                 field  state ("open" | "closed")
    locker_health  tags locker                               fields outbox_depth (int),
                                                                   mqtt_connected (bool),
                                                                   uptime_s (int, s),
                                                                   dropped_points (int),
                                                                   dropped_events (int, opt.),
                                                                   telemetry_backlog (int, opt.),
                                                                   agent_version (str, optional)

Field types never change for a given field: InfluxDB refuses a point whose field type differs
from the one already stored in the shard ("field type conflict"), so the constructors below
coerce (an integer temperature reading is still written as a float).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from telemetry.errors import PointError

FieldValue = float | int | bool | str
Precision = Literal["ns", "us", "ms", "s"]

# Nanoseconds per unit of each write precision InfluxDB accepts (`/write?precision=`).
PRECISION_NS: Final[Mapping[str, int]] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass(frozen=True)
class Measurement:
    """Names and units of one measurement; ``fields`` maps field name to (python type, unit)."""

    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, tuple[type, str]]


# Tag names, shared by every measurement that carries them.
TAG_LOCKER: Final = "locker"
TAG_COMPARTMENT: Final = "compartment"
TAG_ZONE: Final = "zone"
TAG_SENSOR: Final = "sensor"

# Zones as the lockers configure them; only chilled and frozen carry cold-chain rules.
ZONE_AMBIENT: Final = "ambient"
ZONE_CHILLED: Final = "chilled"
ZONE_FROZEN: Final = "frozen"
ZONES: Final = (ZONE_AMBIENT, ZONE_CHILLED, ZONE_FROZEN)

DOOR_OPEN: Final = "open"
DOOR_CLOSED: Final = "closed"

COLD_CHAIN: Final = Measurement(
    name="cold_chain",
    tags=(TAG_LOCKER, TAG_COMPARTMENT, TAG_ZONE, TAG_SENSOR),
    fields={"celsius": (float, "°C"), "humidity": (float, "%RH")},
)
DOOR: Final = Measurement(
    name="door",
    tags=(TAG_LOCKER, TAG_COMPARTMENT),
    fields={"state": (str, "open|closed")},
)
LOCKER_HEALTH: Final = Measurement(
    name="locker_health",
    tags=(TAG_LOCKER,),
    fields={
        "outbox_depth": (int, "messages"),
        "mqtt_connected": (bool, "bool"),
        "uptime_s": (int, "s"),
        "dropped_points": (int, "points"),
        "dropped_events": (int, "events"),
        "telemetry_backlog": (int, "points"),
        "agent_version": (str, "version"),
    },
)
MEASUREMENTS: Final[Mapping[str, Measurement]] = {
    m.name: m for m in (COLD_CHAIN, DOOR, LOCKER_HEALTH)
}

# Field names used by queries (so a rename is one edit here).
F_CELSIUS: Final = "celsius"
F_HUMIDITY: Final = "humidity"
F_DOOR_STATE: Final = "state"
F_OUTBOX_DEPTH: Final = "outbox_depth"
F_MQTT_CONNECTED: Final = "mqtt_connected"
F_UPTIME_S: Final = "uptime_s"
F_DROPPED_POINTS: Final = "dropped_points"
F_DROPPED_EVENTS: Final = "dropped_events"
F_TELEMETRY_BACKLOG: Final = "telemetry_backlog"
F_AGENT_VERSION: Final = "agent_version"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Point:
    """One line-protocol point; ``time`` is an aware datetime or integer ns since the epoch."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time: datetime | int

    @property
    def time_ns(self) -> int:
        return to_ns(self.time)


def to_ns(value: datetime | int) -> int:
    """Integer nanoseconds since the epoch; integer arithmetic so no float rounding creeps in."""
    if isinstance(value, bool):
        raise PointError("timestamp must be a datetime or integer nanoseconds, not bool")
    if isinstance(value, int):
        return value
    if not isinstance(value, datetime):
        raise PointError(f"timestamp must be a datetime or int, got {type(value).__name__}")
    if value.tzinfo is None:
        raise PointError("timestamp must be timezone-aware (sampling time in UTC)")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """Aware UTC datetime (microsecond resolution) for integer nanoseconds since the epoch."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1_000
    )


# --- constructors: the only way the edge should build points -----------------------------


def cold_chain_point(
    *,
    locker: str,
    compartment: str,
    zone: str,
    sensor: str,
    celsius: float,
    at: datetime | int,
    humidity: float | None = None,
) -> Point:
    if zone not in ZONES:
        raise PointError(f"unknown zone {zone!r}; expected one of {', '.join(ZONES)}")
    fields: dict[str, FieldValue] = {F_CELSIUS: _float(celsius, F_CELSIUS)}
    if humidity is not None:
        fields[F_HUMIDITY] = _float(humidity, F_HUMIDITY)
    tags = {TAG_LOCKER: locker, TAG_COMPARTMENT: compartment, TAG_ZONE: zone, TAG_SENSOR: sensor}
    return Point(COLD_CHAIN.name, tags, fields, at)


def door_point(*, locker: str, compartment: str, is_open: bool, at: datetime | int) -> Point:
    state = DOOR_OPEN if is_open else DOOR_CLOSED
    return Point(
        DOOR.name, {TAG_LOCKER: locker, TAG_COMPARTMENT: compartment}, {F_DOOR_STATE: state}, at
    )


def locker_health_point(
    *,
    locker: str,
    outbox_depth: int,
    mqtt_connected: bool,
    uptime_s: int,
    dropped_points: int,
    at: datetime | int,
    telemetry_backlog: int | None = None,
    agent_version: str | None = None,
    dropped_events: int | None = None,
) -> Point:
    fields: dict[str, FieldValue] = {
        F_OUTBOX_DEPTH: int(outbox_depth),
        F_MQTT_CONNECTED: bool(mqtt_connected),
        F_UPTIME_S: int(uptime_s),
        F_DROPPED_POINTS: int(dropped_points),
    }
    if dropped_events is not None:
        fields[F_DROPPED_EVENTS] = int(dropped_events)
    if telemetry_backlog is not None:
        fields[F_TELEMETRY_BACKLOG] = int(telemetry_backlog)
    if agent_version:
        fields[F_AGENT_VERSION] = str(agent_version)
    return Point(LOCKER_HEALTH.name, {TAG_LOCKER: locker}, fields, at)


def _float(value: float, name: str) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError) as exc:
        raise PointError(f"{name} must be a number, got {value!r}") from exc
    return result


# --- line protocol --------------------------------------------------------------------------

# Escaping per InfluxDB line protocol: measurement escapes comma and space; tag keys, tag
# values and field keys also escape '='; string field values escape '"' and backslash.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise PointError(f"{kind} must be a non-empty string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise PointError(f"{kind} {value!r} contains a newline, which line protocol cannot carry")
    # A trailing backslash would escape the separator that follows it (1.x and 2.x differ on
    # backslash escapes), so refuse it rather than write something that reads back differently.
    if value.endswith("\\"):
        raise PointError(f"{kind} {value!r} ends with a backslash")


def escape_measurement(value: str) -> str:
    _check_name("measurement", value)
    return value.translate(_MEASUREMENT_ESCAPES)


def escape_key(value: str, kind: str = "tag") -> str:
    _check_name(kind, value)
    return value.translate(_KEY_ESCAPES)


def encode_field_value(value: FieldValue) -> str:
    # bool before int: bool is a subclass of int and must not become "1i".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PointError(f"field value {value!r} is not finite; InfluxDB cannot store it")
        return repr(value)
    if isinstance(value, str):
        if "\n" in value:
            raise PointError("string field values cannot contain a newline")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise PointError(f"unsupported field value type {type(value).__name__}")


def to_line(point: Point, precision: Precision = "ns") -> str:
    """One line of line protocol, timestamp in ``precision`` units (pass the same to /write).

    Tags with an empty or None value are dropped (InfluxDB refuses empty tag values); tags are
    sorted by key, which is what InfluxDB recommends for write performance.
    """
    if precision not in PRECISION_NS:
        raise PointError(f"unknown precision {precision!r}; expected ns, us, ms or s")
    if not point.fields:
        raise PointError(f"point {point.measurement!r} has no fields")
    parts = [escape_measurement(point.measurement)]
    for key in sorted(point.tags):
        value = point.tags[key]
        if value is None or value == "":
            continue
        parts.append(f",{escape_key(key)}={escape_key(str(value), 'tag value')}")
    fields = ",".join(
        f"{escape_key(k, 'field key')}={encode_field_value(v)}" for k, v in point.fields.items()
    )
    stamp = point.time_ns // PRECISION_NS[precision]
    return f"{''.join(parts)} {fields} {stamp}"


def to_lines(points: Iterable[Point], precision: Precision = "ns") -> str:
    """A /write body: one line per point, newline-terminated."""
    return "".join(to_line(p, precision) + "\n" for p in points)
