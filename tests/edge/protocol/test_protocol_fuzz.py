"""Hostile input never escapes as anything but our own error types (no KeyError, TypeError...)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol import ds18b20, envelopes, kerong, modbus, topics
from edge.protocol.errors import EnvelopeError, ProtocolError, TokenError
from edge.protocol.token import generate_keypair, verify_token

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
command_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.uuids().map(str),
        "type": json_values | st.sampled_from(list(envelopes.PAYLOAD_TYPES)),
        "issued_at": json_values | st.just("2026-11-30T08:00:00Z"),
        "expires_at": json_values | st.just("2026-11-30T09:00:00Z"),
        "payload": json_values,
    },
)
DECODERS = [
    envelopes.decode_command,
    envelopes.decode_ack,
    envelopes.decode_event,
    envelopes.decode_state,
    envelopes.decode_status,
]
_, PUBLIC = generate_keypair()
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@settings(deadline=None)
@given(value=json_values | command_like)
def test_decoders_raise_only_envelope_errors(value: object) -> None:
    data = json.dumps(value).encode()
    for decode in DECODERS:
        with contextlib.suppress(EnvelopeError):
            decode(data)


@settings(deadline=None)
@given(data=st.binary(max_size=64))
def test_decoders_on_raw_bytes(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(EnvelopeError):
            decode(data)


@settings(deadline=None)
@given(text=st.text(max_size=300) | st.builds(lambda a, b: f"TBX1.{a}.{b}", st.text(), st.text()))
def test_verify_token_raises_only_token_errors(text: str) -> None:
    with contextlib.suppress(TokenError):
        verify_token(text, PUBLIC, locker_id="L1", now=NOW)


@settings(deadline=None)
@given(data=st.binary(max_size=20))
def test_frame_parsers_raise_only_protocol_errors(data: bytes) -> None:
    for parse in (
        kerong.parse_status,
        kerong.parse_frame,
        modbus.parse_request,
        lambda d: modbus.parse_read_input_registers_response(d, 1, 2),
    ):
        with contextlib.suppress(ProtocolError):
            parse(data)


@settings(deadline=None)
@given(text=st.text(max_size=200))
def test_w1_parser_and_topics_raise_only_protocol_errors(text: str) -> None:
    with contextlib.suppress(ProtocolError):
        ds18b20.parse_w1_slave(text)
    with contextlib.suppress(ProtocolError):
        topics.parse_topic(text)
    with contextlib.suppress(ProtocolError):
        topics.matches(text, "tuanbox/v1/lockers/L1/evt")
