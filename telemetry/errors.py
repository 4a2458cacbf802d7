"""Errors of the telemetry component, each with a stable machine-readable ``code``.

Hierarchy::

    TelemetryError                 TELEMETRY_ERROR
    ├── PointError                 BAD_POINT            (schema or line protocol refuses it)
    ├── InfluxUnavailableError     INFLUX_UNAVAILABLE   (connect/timeout, 5xx: retry later)
    ├── InfluxAuthError            INFLUX_AUTH          (401/403: wrong credentials or token)
    ├── InfluxWriteError           INFLUX_WRITE_REJECTED (400 on /write: bad line, type conflict)
    ├── InfluxQueryError           INFLUX_QUERY         (InfluxQL error in a /query answer)
    └── DatabaseNotFoundError      INFLUX_DB_NOT_FOUND  (writing to or querying a missing database)

Pure module (stdlib only) so the edge agent can import it without the platform.
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Base of every telemetry error; ``code`` is stable and safe to show or log."""

    code: str = "TELEMETRY_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class PointError(TelemetryError, ValueError):
    code = "BAD_POINT"


class InfluxUnavailableError(TelemetryError):
    code = "INFLUX_UNAVAILABLE"


class InfluxAuthError(TelemetryError):
    code = "INFLUX_AUTH"


class InfluxWriteError(TelemetryError):
    code = "INFLUX_WRITE_REJECTED"


class InfluxQueryError(TelemetryError):
    code = "INFLUX_QUERY"


class DatabaseNotFoundError(TelemetryError):
    code = "INFLUX_DB_NOT_FOUND"
