"""Mutated valid input (bit flips, truncation, extension, splices) and random bytes against every
edge parser: the answer is our own error or a value that round-trips, never another exception,
and a damaged frame, reading or pickup token is never taken for a good one."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edge.protocol import ds18b20, envelopes, kerong, modbus
from edge.protocol.errors import EnvelopeError, FrameError, ProtocolError, TokenError
from edge.protocol.token import (
    PickupToken,
    check_compartment,
    generate_keypair,
    sign_token,
    verify_token,
)

FAST = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """One damage a serial line, a file or a camera can do to ``data``."""
    n = len(data)
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "replace", "insert", "delete"]))
    if kind == "flip":
        return _flip(data, draw(st.integers(0, n * 8 - 1)))
    if kind == "truncate":
        return data[: draw(st.integers(0, n - 1))]
    if kind == "extend":
        return data + draw(st.binary(min_size=1, max_size=12))
    at = draw(st.integers(0, n - 1))
    if kind == "replace":
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at:]
    return data[:at] + data[at + 1 :]


# --- Kerong lock board -------------------------------------------------------------------

bits16 = st.lists(st.booleans(), min_size=16, max_size=16)
kerong_frames = st.one_of(
    st.builds(kerong.unlock_frame, st.integers(0, 15), st.integers(1, 16)),
    st.builds(kerong.status_frame, st.integers(0, 15)),
    st.just(kerong.status_all_frame()),
    st.builds(
        kerong.status_reply,
        st.integers(0, 15),
        bits16,
        bits16,
        st.sampled_from([0, 1]),
        lock=st.integers(1, 16),
    ),
)


def _kerong_accepts(data: bytes) -> kerong.Frame | None:
    try:
        frame = kerong.parse_frame(data)
    except FrameError:
        return None
    # Accepted means well formed: it is exactly the frame it decodes to.
    assert frame.to_bytes() == data
    return frame


@FAST
@given(data=st.data(), frame=kerong_frames)
def test_kerong_mutations_are_refused_or_round_trip(data: st.DataObject, frame: bytes) -> None:
    assert _kerong_accepts(frame) is not None
    damaged = data.draw(mutated(frame))
    parsed = _kerong_accepts(damaged)
    if parsed is not None and parsed.cmd == kerong.CMD_STATUS_REPLY:
        status = kerong.parse_status(damaged)
        assert len(status.hooks_closed) == len(status.items_present) == 16


@FAST
@given(frame=kerong_frames, bit=st.integers(0, 9 * 8 - 1))
def test_kerong_never_takes_a_single_bit_error(frame: bytes, bit: int) -> None:
    assume(bit < len(frame) * 8)
    with pytest.raises(FrameError):
        kerong.parse_frame(_flip(frame, bit))


@FAST
@given(
    chunks=st.lists(
        st.one_of(kerong_frames, st.binary(max_size=12), kerong_frames.map(lambda f: f[:-1])),
        max_size=8,
    ),
    split=st.integers(1, 7),
)
def test_kerong_stream_decoder_yields_only_checked_frames(chunks: list[bytes], split: int) -> None:
    stream = b"".join(chunks)
    decoder = kerong.FrameDecoder()
    frames = []
    for start in range(0, len(stream), split):
        frames += decoder.feed(stream[start : start + split])
    for frame in frames:
        assert kerong.parse_frame(frame.to_bytes()) == frame
    assert decoder.pending <= kerong.MAX_FRAME_LENGTH


# --- Modbus RTU probes --------------------------------------------------------------------

units = st.integers(1, 247)
requests = st.builds(
    modbus.read_input_registers_request, units, st.integers(0, 0xFFFF), st.integers(1, 125)
)
registers = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8)


def _modbus_request_accepts(data: bytes) -> modbus.ModbusRequest | None:
    try:
        request = modbus.parse_request(data)
    except FrameError:
        return None
    rebuilt = modbus.with_crc(
        bytes([request.unit, request.function])
        + request.address.to_bytes(2, "big")
        + request.count.to_bytes(2, "big")
    )
    assert rebuilt == data
    return request


@FAST
@given(data=st.data(), frame=requests)
def test_modbus_request_mutations_are_refused_or_round_trip(
    data: st.DataObject, frame: bytes
) -> None:
    assert _modbus_request_accepts(frame) is not None
    _modbus_request_accepts(data.draw(mutated(frame)))


@FAST
@given(data=st.data(), unit=units, values=registers)
def test_modbus_response_mutations_are_refused_or_round_trip(
    data: st.DataObject, unit: int, values: list[int]
) -> None:
    frame = modbus.build_read_input_registers_response(unit, values)
    assert modbus.parse_read_input_registers_response(frame, unit, len(values)) == values
    damaged = data.draw(mutated(frame))
    try:
        got = modbus.parse_read_input_registers_response(damaged, unit, len(values))
    except ProtocolError:
        return
    assert modbus.build_read_input_registers_response(unit, got) == damaged


@FAST
@given(unit=units, values=registers, bit=st.integers(0, 8 * 21 - 1))
def test_modbus_never_takes_a_single_bit_error(unit: int, values: list[int], bit: int) -> None:
    frame = modbus.build_read_input_registers_response(unit, values)
    assume(bit < len(frame) * 8)
    with pytest.raises(ProtocolError):
        modbus.parse_read_input_registers_response(_flip(frame, bit), unit, len(values))
    request = modbus.read_input_registers_request(unit, 0, len(values))
    with pytest.raises(FrameError):
        modbus.parse_request(_flip(request, bit % 64))


@FAST
@given(data=st.binary(max_size=40), unit=units, count=st.integers(1, 125))
def test_modbus_random_bytes(data: bytes, unit: int, count: int) -> None:
    try:
        got = modbus.parse_read_input_registers_response(data, unit, count)
    except ProtocolError:
        return
    assert modbus.build_read_input_registers_response(unit, got) == data


# --- DS18B20 on 1-wire --------------------------------------------------------------------


def _w1_accepts(text: str) -> float | None:
    try:
        celsius = ds18b20.parse_w1_slave(text)
    except FrameError:
        return None
    lines = text.strip().splitlines()
    # Accepted means: the kernel said the CRC matched, and the value is one the sensor can read.
    assert lines[0].strip().endswith("YES")
    assert ds18b20.MIN_CELSIUS <= celsius <= ds18b20.MAX_CELSIUS
    assert int(lines[1].rsplit("t=", 1)[1]) == round(celsius * 1000)
    return celsius


@FAST
@given(data=st.data(), celsius=st.floats(-55, 125), crc_ok=st.booleans())
def test_w1_mutations_are_refused_or_consistent(
    data: st.DataObject, celsius: float, crc_ok: bool
) -> None:
    text = ds18b20.render_w1_slave(celsius, crc_ok=crc_ok)
    assert (_w1_accepts(text) is not None) == crc_ok
    damaged = data.draw(mutated(text.encode()))
    _w1_accepts(damaged.decode("utf-8", "replace"))


@FAST
@given(
    text=st.text(max_size=120)
    | st.builds(
        lambda head, value: f"{head} YES\n{head} t={value}\n",
        st.text(max_size=30),
        st.integers(-(10**8), 10**8).map(str)
        | st.text(alphabet="-0123456789", min_size=1, max_size=5000)
        | st.text(max_size=12),
    )
)
def test_w1_random_text(text: str) -> None:
    _w1_accepts(text)


def test_w1_refuses_values_no_sensor_reads() -> None:
    """A corrupted `t=` (a flipped digit, an overlong number) is not a temperature."""
    good = ds18b20.render_w1_slave(4.0)
    head = good.splitlines()[0]
    for value in ("850000", "-60000", "9" * 5000, "٣٠٠٠"):
        with pytest.raises(FrameError) as info:
            ds18b20.parse_w1_slave(f"{head}\n72 01 t={value}\n")
        assert info.value.code in ("W1_RANGE", "W1_FORMAT"), value


# --- MQTT envelopes -----------------------------------------------------------------------

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HASH = "a" * 64
times = st.integers(0, 10**6).map(lambda s: T0 + timedelta(seconds=s))
compartments = st.builds(lambda b, lock: f"{b}-{lock}", st.integers(0, 15), st.integers(1, 16))
envelope_models = st.one_of(
    st.builds(
        lambda at, c: envelopes.Command.new(
            "assign",
            envelopes.AssignPayload(order_id="o-1", compartment=c, deposit_code_hash=HASH),
            issued_at=at,
            ttl_seconds=60,
        ),
        times,
        compartments,
    ),
    st.builds(
        lambda at: envelopes.Command.new(
            "sync", envelopes.SyncPayload(), issued_at=at, ttl_seconds=30
        ),
        times,
    ),
    st.builds(
        envelopes.Ack,
        command_id=st.uuids().map(str),
        status=st.sampled_from(["accepted", "done"]),
        at=times,
    ),
    st.builds(
        envelopes.Event,
        locker_id=st.just("L-1"),
        seq=st.integers(1, 2**63 - 1),
        type=st.just("door_opened"),
        at=times,
        payload=compartments.map(lambda c: {"compartment": c}),
    ),
    st.builds(envelopes.Status, state=st.just("online"), boot_id=st.just("b-1"), at=times),
    st.builds(
        envelopes.StateSnapshot,
        locker_id=st.just("L-1"),
        boot_id=st.just("b-1"),
        at=times,
        compartments=st.just(
            [
                envelopes.CompartmentState(
                    compartment="0-1", door="closed", locked=True, item_present=False
                )
            ]
        ),
    ),
)
DECODERS: dict[type, Callable[[bytes], object]] = {
    envelopes.Command: envelopes.decode_command,
    envelopes.Ack: envelopes.decode_ack,
    envelopes.Event: envelopes.decode_event,
    envelopes.Status: envelopes.decode_status,
    envelopes.StateSnapshot: envelopes.decode_state,
}


@FAST
@given(data=st.data(), model=envelope_models)
def test_envelope_mutations_are_refused_or_round_trip(
    data: st.DataObject, model: envelopes._Model
) -> None:
    decode = DECODERS[type(model)]
    raw = envelopes.encode(model)
    assert decode(raw) == model
    damaged = data.draw(mutated(raw))
    for other in DECODERS.values():
        try:
            got = other(damaged)
        except EnvelopeError:
            continue
        # Accepted means valid: what it decoded to encodes and decodes to itself.
        assert isinstance(got, envelopes._Model)
        assert other(envelopes.encode(got)) == got


@FAST
@given(model=envelope_models, extra=st.sampled_from(["x", "id", "payload", "seq"]))
def test_envelopes_refuse_unknown_or_wrongly_typed_fields(
    model: envelopes._Model, extra: str
) -> None:
    decode = DECODERS[type(model)]
    raw = json.loads(envelopes.encode(model))
    if extra in raw:
        raw[extra] = [raw[extra]]  # right name, wrong type
    else:
        raw[extra] = 1  # a field the contract does not have
    with pytest.raises(EnvelopeError):
        decode(json.dumps(raw).encode())


# --- pickup tokens ------------------------------------------------------------------------

PRIVATE, PUBLIC = generate_keypair()
NOW = T0
TOKEN = PickupToken(
    tid="tok-1", lid="L1", cmp="0-3", oid="ord-9", exp=int(T0.timestamp()) + 3600, iat=0
)
TEXT = sign_token(PRIVATE, TOKEN)


@FAST
@given(data=st.data())
def test_any_mutation_of_a_valid_token_is_refused(data: st.DataObject) -> None:
    damaged = data.draw(mutated(TEXT.encode())).decode("latin-1")
    # The reader strips the scanner's line ending; everything else must change the verdict.
    assume(damaged.strip() != TEXT)
    with pytest.raises(TokenError) as info:
        verify_token(damaged, PUBLIC, locker_id="L1", now=NOW)
    assert info.value.code in ("TOKEN_MALFORMED", "TOKEN_SIGNATURE")


@FAST
@given(
    tid=st.text(min_size=1, max_size=64),
    oid=st.text(min_size=1, max_size=64),
    lid=st.sampled_from(["L1", "L2"]),
    cmp=compartments,
    offset=st.integers(-(10**6), 10**6),
    at_locker=st.sampled_from(["L1", "L2"]),
    at_compartment=compartments,
)
def test_token_verdicts(
    tid: str, oid: str, lid: str, cmp: str, offset: int, at_locker: str, at_compartment: str
) -> None:
    exp = int(T0.timestamp()) + offset
    token = PickupToken(tid=tid, lid=lid, cmp=cmp, oid=oid, exp=max(exp, 0), iat=0)
    text = sign_token(PRIVATE, token)
    if lid != at_locker or token.exp <= T0.timestamp():
        with pytest.raises(TokenError) as refused:
            verify_token(text, PUBLIC, locker_id=at_locker, now=NOW)
        expected = "TOKEN_WRONG_LOCKER" if lid != at_locker else "TOKEN_EXPIRED"
        assert refused.value.code == expected
        return
    got = verify_token(text, PUBLIC, locker_id=at_locker, now=NOW)
    assert got == token
    if cmp == at_compartment:
        check_compartment(got, at_compartment)
    else:
        with pytest.raises(TokenError) as info:
            check_compartment(got, at_compartment)
        assert info.value.code == "TOKEN_WRONG_COMPARTMENT"


def test_token_signed_by_another_key_is_refused() -> None:
    other, _ = generate_keypair()
    with pytest.raises(TokenError) as info:
        verify_token(sign_token(other, TOKEN), PUBLIC, locker_id="L1", now=NOW)
    assert info.value.code == "TOKEN_SIGNATURE"
