"""JSON envelopes on the v1 MQTT topics (cmd, ack, evt, state, status) and code hashing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.protocol.compartments import parse_compartment
from edge.protocol.errors import EnvelopeError, ProtocolError
from edge.protocol.topics import LOCKER_ID_RE


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Naive datetimes are refused: a locker and the platform in different zones must agree.
UtcDatetime = Annotated[
    AwareDatetime, AfterValidator(_to_utc), PlainSerializer(_iso_z, when_used="json")
]


def _check_compartment(value: str) -> str:
    try:
        parse_compartment(value)
    except ProtocolError as exc:
        raise ValueError(exc.message) from exc
    return value


def _check_locker_id(value: str) -> str:
    if not LOCKER_ID_RE.fullmatch(value):
        raise ValueError("locker id must be 1-64 of A-Z a-z 0-9 _ -")
    return value


Compartment = Annotated[str, AfterValidator(_check_compartment)]
LockerId = Annotated[str, AfterValidator(_check_locker_id)]
CodeHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]

# Every integer and string that comes from outside has a bound its database column can hold:
# the platform keeps event seqs in BIGINT columns, agent versions in VARCHAR(64).
SEQ_MAX = 2**63 - 1
MAX_COMPARTMENTS = 16 * 16  # boards x locks a compartment id can address


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- command payloads -------------------------------------------------------------------


class AssignPayload(_Model):
    order_id: NonEmpty
    compartment: Compartment
    deposit_code_hash: CodeHash
    expires_at: UtcDatetime | None = None


class ArmPickupPayload(_Model):
    order_id: NonEmpty
    compartment: Compartment
    token_id: NonEmpty
    fallback_code_hash: CodeHash
    valid_until: UtcDatetime


class RevokePayload(_Model):
    order_id: NonEmpty
    compartment: Compartment
    reason: NonEmpty


class OpenPayload(_Model):
    compartment: Compartment
    reason: NonEmpty
    operator: NonEmpty


class ConfigurePayload(_Model):
    """Every field is optional: ``None`` means "leave the locker's current value"."""

    pickup_public_key: str | None = Field(
        default=None, description="raw 32-byte Ed25519 public key, standard base64"
    )
    door_left_open_seconds: Annotated[int, Field(gt=0, le=3600)] | None = None
    unlock_confirm_seconds: Annotated[float, Field(gt=0, le=60)] | None = None
    poll_interval_ms: Annotated[int, Field(ge=50, le=5000)] | None = None
    sample_interval_seconds: Annotated[int, Field(gt=0, le=3600)] | None = None
    chilled_max_celsius: float | None = None
    frozen_max_celsius: float | None = None
    fallback_max_attempts: Annotated[int, Field(gt=0, le=100)] | None = None

    @field_validator("pickup_public_key")
    @classmethod
    def _key_is_ed25519(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from edge.protocol.token import public_key_from_b64  # token imports this module

        try:
            public_key_from_b64(value)
        except ProtocolError as exc:
            raise ValueError(exc.message) from exc
        return value


class SyncPayload(_Model):
    pass


CommandType = Literal["assign", "arm_pickup", "revoke", "open", "configure", "sync"]
CommandPayload = (
    AssignPayload | ArmPickupPayload | RevokePayload | OpenPayload | ConfigurePayload | SyncPayload
)
PAYLOAD_TYPES: dict[str, type[_Model]] = {
    "assign": AssignPayload,
    "arm_pickup": ArmPickupPayload,
    "revoke": RevokePayload,
    "open": OpenPayload,
    "configure": ConfigurePayload,
    "sync": SyncPayload,
}


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(item) for item in (prefix, *error["loc"]) if item != "")
        message = error["msg"]
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            message = str(error["ctx"]["error"])  # drop pydantic's "Value error, " prefix
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


class Command(_Model):
    """Platform → locker. ``id`` is the idempotency key the locker keeps on disk."""

    id: str
    type: CommandType
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    payload: CommandPayload

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError("must be a UUID string") from exc

    @model_validator(mode="before")
    @classmethod
    def _payload_matches_type(cls, data: Any) -> Any:
        # The payload's model is chosen by the sibling ``type`` field, so validate it here
        # rather than letting a union guess (an empty SyncPayload would accept anything).
        if not isinstance(data, dict):
            return data
        kind = data.get("type")
        model = PAYLOAD_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            return data  # the ``type`` field's own validation reports it
        payload = data.get("payload", {})
        if isinstance(payload, BaseModel):
            if not isinstance(payload, model):
                raise ValueError(
                    f"payload: a {data['type']} command needs {model.__name__}, "
                    f"got {type(payload).__name__}"
                )
            return data
        try:
            return {**data, "payload": model.model_validate(payload)}
        except ValidationError as exc:
            raise ValueError(_describe(exc, "payload")) from None

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> Command:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be later than issued_at")
        return self

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @classmethod
    def new(
        cls, type: CommandType, payload: CommandPayload, *, issued_at: datetime, ttl_seconds: float
    ) -> Command:
        """A fresh command with a random id (platform side)."""
        return cls(
            id=str(uuid.uuid4()),
            type=type,
            issued_at=issued_at,
            expires_at=issued_at + timedelta(seconds=ttl_seconds),
            payload=payload,
        )


class Ack(_Model):
    """Locker → platform answer to one command; rejected/failed carry a stable ``code``."""

    command_id: Annotated[str, Field(min_length=1, max_length=64)]
    status: Literal["accepted", "done", "rejected", "failed"]
    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")] | None = None
    detail: Annotated[str, Field(max_length=500)] | None = None
    at: UtcDatetime

    @model_validator(mode="after")
    def _failures_have_code(self) -> Ack:
        if self.status in ("rejected", "failed") and self.code is None:
            raise ValueError(f"code is required when status is {self.status}")
        return self


EventType = Literal[
    "door_opened",
    "door_closed",
    "deposited",
    "picked_up",
    "pickup_rejected",
    "door_left_open",
    "unlock_failed",
    "sensor_fault",
    "tamper",
]


class Event(_Model):
    """Locker → platform fact; ``seq`` grows by one per event and survives restarts.

    The payload is open, but the keys the platform looks things up by are checked here, so
    a bad value is refused with its reason instead of failing deep inside the platform.
    """

    locker_id: LockerId
    seq: Annotated[int, Field(ge=1, le=SEQ_MAX)]
    type: EventType
    at: UtcDatetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("payload")
    @classmethod
    def _known_keys_are_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        compartment = value.get("compartment")
        if "compartment" in value and not isinstance(compartment, str):
            raise ValueError("compartment must be a string like '0-1'")
        if isinstance(compartment, str):
            _check_compartment(compartment)
        order_id = value.get("order_id")
        if "order_id" in value and not (isinstance(order_id, str) and 1 <= len(order_id) <= 200):
            raise ValueError("order_id must be a string of 1-200 characters")
        return value


class CompartmentState(_Model):
    compartment: Compartment
    door: Literal["open", "closed"]
    locked: bool
    item_present: bool
    reserved_for: str | None = None
    armed_order: str | None = None
    out_of_service: bool = False


class StateSnapshot(_Model):
    """The full retained snapshot of a locker's compartments."""

    locker_id: LockerId
    boot_id: NonEmpty
    at: UtcDatetime
    compartments: Annotated[list[CompartmentState], Field(max_length=MAX_COMPARTMENTS)]

    @model_validator(mode="after")
    def _compartments_unique(self) -> StateSnapshot:
        ids = [c.compartment for c in self.compartments]
        if len(set(ids)) != len(ids):
            raise ValueError("compartments: each compartment may appear only once")
        return self


class Status(_Model):
    """Retained presence: ``online`` on connect, ``offline`` via the MQTT will."""

    state: Literal["online", "offline"]
    boot_id: NonEmpty
    at: UtcDatetime
    agent_version: Annotated[str, Field(max_length=64)] | None = None


Envelope = Command | Ack | Event | StateSnapshot | Status
M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    """Compact UTF-8 JSON with UTC ``...Z`` timestamps; ``None`` fields are kept explicit."""
    return model.model_dump_json().encode()


def _decode(model: type[M], data: bytes | str) -> M:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{model.__name__}: not valid JSON ({exc})", code="BAD_JSON") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError(f"{model.__name__}: expected a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise EnvelopeError(f"{model.__name__}: {_describe(exc)}") from exc


def decode_command(data: bytes | str) -> Command:
    return _decode(Command, data)


def decode_ack(data: bytes | str) -> Ack:
    return _decode(Ack, data)


def decode_event(data: bytes | str) -> Event:
    return _decode(Event, data)


def decode_state(data: bytes | str) -> StateSnapshot:
    return _decode(StateSnapshot, data)


def decode_status(data: bytes | str) -> Status:
    return _decode(Status, data)


# --- deposit and fallback codes ---------------------------------------------------------

_CODE_DOMAIN = "tuanbox/v1/code"


def hash_code(code: str, locker_id: str) -> str:
    """Salted SHA-256 hex of a short numeric code, identical on the platform and the locker.

    The salt (locker id) only stops one table serving every locker: a 6-digit code space is
    tiny, so the real protection is the locker's attempt limit, not the hash.
    """
    normalised = code.strip()
    return hashlib.sha256(f"{_CODE_DOMAIN}\x00{locker_id}\x00{normalised}".encode()).hexdigest()


def codes_match(code: str, locker_id: str, expected_hash: str) -> bool:
    """Constant-time comparison of a typed code against its stored hash."""
    return hmac.compare_digest(
        hash_code(code, locker_id).encode(), expected_hash.lower().encode("utf-8", "replace")
    )
