"""What the agent thread is handed (inputs from other threads) and the state it keeps per door."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge.agent.errors import UnlockFailedError
from edge.protocol.kerong import BoardStatus


@dataclass(frozen=True)
class Purpose:
    """Why we opened a door, so its closing can be read as a deposit or a pickup."""

    kind: Literal["pickup", "deposit", "ops"]
    order_id: str | None = None
    token_id: str | None = None
    method: str | None = None
    command_id: str | None = None


@dataclass(frozen=True)
class CommandMessage:
    payload: bytes


@dataclass(frozen=True)
class ScannerLine:
    text: str


@dataclass(frozen=True)
class BoardPolled:
    status: BoardStatus
    at: float  # monotonic


@dataclass(frozen=True)
class UnlockDone:
    compartment: str
    purpose: Purpose
    error: UnlockFailedError | None
    status: BoardStatus | None = None  # the status that confirmed the unlock
    at: float = 0.0  # monotonic time of that status


@dataclass
class RuntimeConfig:
    """Settings the platform may change with ``configure``; kept in the store."""

    door_left_open_seconds: float
    unlock_confirm_s: float
    fallback_max_attempts: int
    pickup_public_key: str | None
    extra: dict[str, Any] = field(default_factory=dict)


Input = CommandMessage | ScannerLine | BoardPolled | UnlockDone
