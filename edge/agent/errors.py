"""Errors of the locker agent, each with a stable machine-readable ``code``.

Hierarchy::

    EdgeError                 (EDGE_ERROR)
    ├── ConfigError           (CONFIG_INVALID)
    ├── StoreError            (STORE_ERROR)
    ├── SerialLinkError       (SERIAL_UNAVAILABLE, SERIAL_TIMEOUT)
    ├── UnlockFailedError     (UNLOCK_NOT_CONFIRMED, UNLOCK_NO_REPLY)
    ├── SensorError           (SENSOR_MISSING, W1_CRC, W1_FORMAT, MODBUS_*)
    ├── CommandRejectedError  (EXPIRED, BAD_COMMAND, UNKNOWN_COMPARTMENT, COMPARTMENT_BUSY, ...)
    ├── PickupRejectedError   (TOKEN_*, NOT_ARMED, PICKUP_EXPIRED, CODE_WRONG, KEYPAD_LOCKED, ...)
    └── TelemetryWriteError   (INFLUX_UNAVAILABLE, INFLUX_REJECTED)

Protocol errors (``edge.protocol.errors``) are translated at the adapter boundary.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every agent error; ``code`` is stable and safe to log or put in an event."""

    code: str = "EDGE_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(EdgeError):
    """The settings or the config file cannot run a locker."""

    code = "CONFIG_INVALID"


class StoreError(EdgeError):
    """The local SQLite state cannot be read or written."""

    code = "STORE_ERROR"


class SerialLinkError(EdgeError):
    """The serial port is gone, could not be opened, or the board did not answer in time."""

    code = "SERIAL_UNAVAILABLE"


class UnlockFailedError(EdgeError):
    """An unlock was sent but status polling never showed the hook released."""

    code = "UNLOCK_NOT_CONFIRMED"


class SensorError(EdgeError):
    """A temperature probe that is missing or whose reading cannot be trusted."""

    code = "SENSOR_MISSING"


class CommandRejectedError(EdgeError):
    """A command the locker will not apply; ``code`` goes into the ``rejected`` ack."""

    code = "REJECTED"


class PickupRejectedError(EdgeError):
    """A scan or typed code that must not open any door; ``code`` is the event's reason."""

    code = "REJECTED"


class TelemetryWriteError(EdgeError):
    """InfluxDB did not take a batch; ``retryable`` says whether to keep it."""

    code = "INFLUX_UNAVAILABLE"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
