"""Tests of the v1 JSON envelopes: round trips, validation messages, code hashing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from edge.protocol.envelopes import (
    Ack,
    ArmPickupPayload,
    AssignPayload,
    Command,
    CompartmentState,
    ConfigurePayload,
    Event,
    OpenPayload,
    RevokePayload,
    StateSnapshot,
    Status,
    SyncPayload,
    codes_match,
    decode_ack,
    decode_command,
    decode_event,
    decode_state,
    decode_status,
    encode,
    hash_code,
)
from edge.protocol.errors import EnvelopeError
from edge.protocol.token import generate_keypair, public_key_to_b64

NOW = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
CODE_HASH = hash_code("123456", "L1")


def _payloads() -> list[tuple[str, object]]:
    _, public = generate_keypair()
    return [
        ("assign", AssignPayload(order_id="o1", compartment="0-1", deposit_code_hash=CODE_HASH)),
        (
            "arm_pickup",
            ArmPickupPayload(
                order_id="o1",
                compartment="1-16",
                token_id="t1",
                fallback_code_hash=CODE_HASH,
                valid_until=NOW + timedelta(days=2),
            ),
        ),
        ("revoke", RevokePayload(order_id="o1", compartment="0-2", reason="refunded")),
        ("open", OpenPayload(compartment="0-3", reason="cleaning", operator="ops@x")),
        (
            "configure",
            ConfigurePayload(
                pickup_public_key=public_key_to_b64(public), door_left_open_seconds=90
            ),
        ),
        ("sync", SyncPayload()),
    ]


@pytest.mark.parametrize(("kind", "payload"), _payloads())
def test_command_round_trip(kind: str, payload: object) -> None:
    command = Command.new(kind, payload, issued_at=NOW, ttl_seconds=300)  # type: ignore[arg-type]
    data = encode(command)
    assert b" " not in data.replace(b'"cleaning"', b"")  # compact separators
    assert b'"issued_at":"2026-11-30T08:00:00Z"' in data
    decoded = decode_command(data)
    assert decoded == command
    assert isinstance(decoded.payload, type(payload))


def test_timestamps_are_normalised_to_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    status = Status(state="online", boot_id="b1", at=datetime(2026, 11, 30, 16, tzinfo=shanghai))
    assert status.at == NOW
    assert status.at.tzinfo == UTC
    assert json.loads(encode(status))["at"] == "2026-11-30T08:00:00Z"


def _command_dict(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "3f1c4a52-55a3-4b8e-9a38-0a55d4c5e0a1",
        "type": "assign",
        "issued_at": "2026-11-30T08:00:00Z",
        "expires_at": "2026-11-30T08:05:00Z",
        "payload": {"order_id": "o1", "compartment": "0-1", "deposit_code_hash": CODE_HASH},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"id": "not-a-uuid"}, "id"),
        ({"type": "explode"}, "type"),
        ({"issued_at": "2026-11-30T08:00:00"}, "issued_at"),
        ({"expires_at": "2026-11-30T07:00:00Z"}, "expires_at must be later"),
        ({"payload": {"order_id": "o1", "deposit_code_hash": CODE_HASH}}, "payload.compartment"),
        (
            {"payload": {"order_id": "o1", "compartment": "0-17", "deposit_code_hash": CODE_HASH}},
            "payload.compartment",
        ),
        (
            {"payload": {"order_id": "o1", "compartment": "0-1", "deposit_code_hash": "abc"}},
            "payload.deposit_code_hash",
        ),
        ({"type": "sync"}, "payload.order_id"),  # an assign payload is not a sync payload
        ({"type": "configure", "payload": {"pickup_public_key": "AAAA"}}, "32 bytes"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_commands_name_the_field(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_command(json.dumps(_command_dict(**overrides)))
    assert info.value.code == "BAD_ENVELOPE"
    assert needle in str(info.value)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null"])
def test_garbage_is_an_envelope_error(data: bytes) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_command(data)
    assert info.value.code in ("BAD_JSON", "BAD_ENVELOPE")


def test_payload_model_must_match_type() -> None:
    with pytest.raises(ValidationError, match="needs SyncPayload"):
        Command(
            id="3f1c4a52-55a3-4b8e-9a38-0a55d4c5e0a1",
            type="sync",
            issued_at=NOW,
            expires_at=NOW + timedelta(minutes=1),
            payload=RevokePayload(order_id="o", compartment="0-1", reason="r"),
        )


def test_is_expired() -> None:
    command = Command.new("sync", SyncPayload(), issued_at=NOW, ttl_seconds=60)
    assert not command.is_expired(NOW + timedelta(seconds=59))
    assert command.is_expired(NOW + timedelta(seconds=60))


def test_ack_round_trip_and_failure_needs_code() -> None:
    ack = Ack(command_id="c1", status="failed", code="UNLOCK_FAILED", detail="hook", at=NOW)
    assert decode_ack(encode(ack)) == ack
    with pytest.raises(EnvelopeError, match="code is required"):
        decode_ack(b'{"command_id":"c1","status":"rejected","at":"2026-11-30T08:00:00Z"}')
    with pytest.raises(EnvelopeError, match="status"):
        decode_ack(b'{"command_id":"c1","status":"maybe","at":"2026-11-30T08:00:00Z"}')


def test_event_round_trip_and_seq_positive() -> None:
    event = Event(locker_id="L1", seq=7, type="picked_up", at=NOW, payload={"compartment": "0-1"})
    assert decode_event(encode(event)) == event
    bad = json.loads(encode(event))
    bad["seq"] = 0
    with pytest.raises(EnvelopeError, match="seq"):
        decode_event(json.dumps(bad))
    bad["seq"], bad["locker_id"] = 1, "a/b"
    with pytest.raises(EnvelopeError, match="locker_id"):
        decode_event(json.dumps(bad))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"seq": 2**63}, "seq"),  # past BIGINT
        ({"payload": {"compartment": "3000000000-1"}}, "invalid compartment .3000000000-1."),
        ({"payload": {"compartment": "0-99999999999999999999"}}, "compartment"),
        ({"payload": {"compartment": 7}}, "compartment must be a string"),
        ({"payload": {"order_id": ""}}, "order_id"),
    ],
)
def test_event_values_out_of_bounds_are_refused_with_a_reason(
    change: dict[str, object], needle: str
) -> None:
    body = json.loads(encode(Event(locker_id="L1", seq=1, type="door_opened", at=NOW)))
    with pytest.raises(EnvelopeError, match=needle):
        decode_event(json.dumps({**body, **change}))


def test_bounds_reach_what_the_platform_stores() -> None:
    # The largest seq a BIGINT holds still decodes; compartments up to 15-16.
    event = Event(locker_id="L1", seq=2**63 - 1, type="deposited", at=NOW,
                  payload={"compartment": "15-16", "order_id": "o" * 200})  # fmt: skip
    assert decode_event(encode(event)) == event
    status = json.loads(encode(Status(state="online", boot_id="b", at=NOW)))
    with pytest.raises(EnvelopeError, match="agent_version"):
        decode_status(json.dumps({**status, "agent_version": "v" * 65}))
    with pytest.raises(EnvelopeError, match="command_id"):
        decode_ack(json.dumps({"command_id": "c" * 65, "status": "done", "at": NOW.isoformat()}))
    snapshot = json.loads(
        encode(StateSnapshot(locker_id="L1", boot_id="b", at=NOW, compartments=[]))
    )
    many = [{"compartment": "0-1", "door": "closed", "locked": True, "item_present": False}] * 257
    with pytest.raises(EnvelopeError, match="compartments"):
        decode_state(json.dumps({**snapshot, "compartments": many}))


def test_state_and_status_round_trip() -> None:
    snapshot = StateSnapshot(
        locker_id="L1",
        boot_id="b1",
        at=NOW,
        compartments=[
            CompartmentState(compartment="0-1", door="closed", locked=True, item_present=True),
            CompartmentState(
                compartment="0-2",
                door="open",
                locked=False,
                item_present=False,
                reserved_for="o2",
                out_of_service=True,
            ),
        ],
    )
    assert decode_state(encode(snapshot)) == snapshot
    status = Status(state="offline", boot_id="b1", at=NOW, agent_version="0.1.0")
    assert decode_status(encode(status)) == status
    with pytest.raises(EnvelopeError, match="door"):
        decode_state(encode(snapshot).replace(b'"open"', b'"ajar"'))
    with pytest.raises(EnvelopeError, match="only once"):
        decode_state(encode(snapshot).replace(b'"0-2"', b'"0-1"'))


def test_hash_code_is_salted_and_matches_in_constant_time() -> None:
    digest = hash_code("123456", "L1")
    assert len(digest) == 64
    assert digest != hash_code("123456", "L2")
    assert digest != hash_code("123457", "L1")
    assert hash_code(" 123456\n", "L1") == digest
    assert codes_match("123456", "L1", digest)
    assert codes_match("123456", "L1", digest.upper())
    assert not codes_match("654321", "L1", digest)
    assert not codes_match("123456", "L1", "é" * 64)
