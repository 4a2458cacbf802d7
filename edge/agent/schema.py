"""The agent's telemetry lines, built only through ``telemetry.schema`` (the one place names live).

``telemetry.schema`` is pure stdlib, ships in the same distribution and is what the platform's
queries read with, so a field renamed there is renamed here too. This module only fixes the
agent's choices: millisecond timestamps (``precision=ms`` on every write; a resend of the same
point overwrites it) and integer-millisecond sampling times in, one line of protocol out.
"""

from __future__ import annotations

from telemetry import schema as ts
from telemetry.errors import PointError

PRECISION: ts.Precision = "ms"
ZONES = ts.ZONES
AGENT_VERSION = "0.1.0"

__all__ = ["PRECISION", "ZONES", "PointError", "cold_chain", "door", "locker_health"]


def _ns(at_ms: int) -> int:
    return int(at_ms) * 1_000_000


def cold_chain(
    locker: str,
    compartment: str,
    zone: str,
    sensor: str,
    at_ms: int,
    celsius: float,
    humidity: float | None = None,
) -> str:
    """A ``cold_chain`` line; an empty compartment (a zone-wide probe) drops that tag."""
    point = ts.cold_chain_point(
        locker=locker,
        compartment=compartment,
        zone=zone,
        sensor=sensor,
        celsius=celsius,
        humidity=humidity,
        at=_ns(at_ms),
    )
    return ts.to_line(point, PRECISION)


def door(locker: str, compartment: str, is_open: bool, at_ms: int) -> str:
    point = ts.door_point(locker=locker, compartment=compartment, is_open=is_open, at=_ns(at_ms))
    return ts.to_line(point, PRECISION)


def locker_health(
    locker: str,
    at_ms: int,
    *,
    outbox_depth: int,
    mqtt_connected: bool,
    uptime_s: int,
    dropped_points: int,
    telemetry_backlog: int,
    dropped_events: int = 0,
) -> str:
    point = ts.locker_health_point(
        locker=locker,
        outbox_depth=outbox_depth,
        mqtt_connected=mqtt_connected,
        uptime_s=uptime_s,
        dropped_points=dropped_points,
        dropped_events=dropped_events,
        telemetry_backlog=telemetry_backlog,
        agent_version=AGENT_VERSION,
        at=_ns(at_ms),
    )
    return ts.to_line(point, PRECISION)
