"""The agent's outward ports, so unit tests can swap in fakes of our own interfaces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

from edge.protocol.envelopes import StateSnapshot

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Publisher(ABC):
    """The MQTT side as the agent core sees it: the outbox lives in the store."""

    @abstractmethod
    def publish_state(self, snapshot: StateSnapshot) -> None:
        """Retained snapshot now if connected, else on the next connect."""

    @abstractmethod
    def wake(self) -> None:
        """New rows are in the outbox."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...


class TelemetrySink(ABC):
    """Somewhere line protocol goes (InfluxDB 1.x or 2.x)."""

    @abstractmethod
    def write(self, lines: list[str]) -> None:
        """Write one batch; TelemetryWriteError(retryable=...) when it did not land."""

    def write_overlapped(self, lines: list[str], meanwhile: Callable[[], None]) -> None:
        """`write`, calling ``meanwhile`` (which must not raise) while the server works on
        the batch, if the sink can; this one calls it after the write."""
        self.write(lines)
        meanwhile()

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
