"""Errors of the shared edge protocol, each with a stable machine-readable ``code``.

Hierarchy::

    ProtocolError            (code: e.g. MODBUS_EXCEPTION, MODBUS_CRC, BAD_COMPARTMENT)
    ├── TopicError           (BAD_TOPIC, BAD_FILTER, BAD_LOCKER_ID)
    ├── EnvelopeError        (BAD_ENVELOPE, BAD_JSON)
    ├── FrameError           (BAD_FRAME, BAD_CHECKSUM, W1_CRC, W1_FORMAT, W1_RANGE,
    │                         W1_POWER_ON)
    └── TokenError           (TOKEN_MALFORMED, TOKEN_SIGNATURE, TOKEN_EXPIRED,
                              TOKEN_WRONG_LOCKER, TOKEN_WRONG_COMPARTMENT, BAD_KEY)
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every protocol error; ``code`` is stable and safe to show or log."""

    code: str = "PROTOCOL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TopicError(ProtocolError):
    """An MQTT topic or filter that is not part of the v1 contract."""

    code = "BAD_TOPIC"


class EnvelopeError(ProtocolError):
    """A JSON message (command, ack, event, state, status) that does not validate."""

    code = "BAD_ENVELOPE"


class FrameError(ProtocolError):
    """A serial frame or sensor reading that cannot be trusted."""

    code = "BAD_FRAME"


class TokenError(ProtocolError):
    """A pickup token (or key) that must not open a door."""

    code = "TOKEN_MALFORMED"
