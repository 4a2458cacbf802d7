"""InfluxDB names written by the agent: the one place the telemetry package imports them from.

``cold_chain``   tags locker, compartment, zone, sensor; fields celsius (float), humidity (float)
``door``         tags locker, compartment; field state ("open" | "closed")
``locker_health`` tag locker; fields outbox_depth (int), mqtt_connected (bool), uptime_s (int),
                 dropped_points (int), telemetry_backlog (int)

Timestamps are the sampling time in milliseconds (``precision=ms``), so writing the same
point twice overwrites it instead of adding a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping

PRECISION = "ms"

COLD_CHAIN = "cold_chain"
DOOR = "door"
LOCKER_HEALTH = "locker_health"

TAG_LOCKER = "locker"
TAG_COMPARTMENT = "compartment"
TAG_ZONE = "zone"
TAG_SENSOR = "sensor"

FIELD_CELSIUS = "celsius"
FIELD_HUMIDITY = "humidity"
FIELD_STATE = "state"
FIELD_OUTBOX_DEPTH = "outbox_depth"
FIELD_MQTT_CONNECTED = "mqtt_connected"
FIELD_UPTIME_S = "uptime_s"
FIELD_DROPPED_POINTS = "dropped_points"
FIELD_TELEMETRY_BACKLOG = "telemetry_backlog"

DOOR_OPEN = "open"
DOOR_CLOSED = "closed"

FieldValue = float | int | bool | str


def _escape_key(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], at_ms: int
) -> str:
    """One line of InfluxDB line protocol; empty tag values are left out (Influx refuses them)."""
    if not fields:
        raise ValueError("a point needs at least one field")
    tag_part = "".join(
        f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()) if v != ""
    )
    field_part = ",".join(f"{_escape_key(k)}={_format_field(v)}" for k, v in fields.items())
    return f"{_escape_key(measurement)}{tag_part} {field_part} {int(at_ms)}"


def cold_chain(
    locker: str,
    compartment: str,
    zone: str,
    sensor: str,
    at_ms: int,
    celsius: float,
    humidity: float | None = None,
) -> str:
    fields: dict[str, FieldValue] = {FIELD_CELSIUS: float(celsius)}
    if humidity is not None:
        fields[FIELD_HUMIDITY] = float(humidity)
    tags = {TAG_LOCKER: locker, TAG_COMPARTMENT: compartment, TAG_ZONE: zone, TAG_SENSOR: sensor}
    return line(COLD_CHAIN, tags, fields, at_ms)


def door(locker: str, compartment: str, is_open: bool, at_ms: int) -> str:
    state = DOOR_OPEN if is_open else DOOR_CLOSED
    tags = {TAG_LOCKER: locker, TAG_COMPARTMENT: compartment}
    return line(DOOR, tags, {FIELD_STATE: state}, at_ms)


def locker_health(
    locker: str,
    at_ms: int,
    *,
    outbox_depth: int,
    mqtt_connected: bool,
    uptime_s: int,
    dropped_points: int,
    telemetry_backlog: int,
) -> str:
    fields: dict[str, FieldValue] = {
        FIELD_OUTBOX_DEPTH: outbox_depth,
        FIELD_MQTT_CONNECTED: mqtt_connected,
        FIELD_UPTIME_S: uptime_s,
        FIELD_DROPPED_POINTS: dropped_points,
        FIELD_TELEMETRY_BACKLOG: telemetry_backlog,
    }
    return line(LOCKER_HEALTH, {TAG_LOCKER: locker}, fields, at_ms)
