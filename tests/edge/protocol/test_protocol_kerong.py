"""Tests of the Kerong KR-CU16 codec and its resynchronising stream decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol import kerong
from edge.protocol.errors import FrameError, ProtocolError


def test_reference_example_from_the_architecture() -> None:
    assert kerong.unlock_frame(0, 1) == bytes.fromhex("02 00 31 03 36")


def test_addresses_and_commands() -> None:
    assert kerong.unlock_frame(1, 16) == bytes.fromhex("02 1f 31 03") + bytes([0x55])
    assert kerong.status_frame(2) == bytes.fromhex("02 20 30 03 55")
    assert kerong.status_all_frame() == bytes.fromhex("02 00 32 03 37")
    frame = kerong.parse_frame(kerong.unlock_frame(3, 5))
    assert (frame.board, frame.lock, frame.cmd) == (3, 5, kerong.CMD_UNLOCK)


@pytest.mark.parametrize(("board", "lock"), [(-1, 1), (16, 1), (0, 0), (0, 17)])
def test_out_of_range_addresses(board: int, lock: int) -> None:
    with pytest.raises(ProtocolError) as info:
        kerong.unlock_frame(board, lock)
    assert info.value.code == "BAD_COMPARTMENT"


bools16 = st.lists(st.booleans(), min_size=16, max_size=16)


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(
    board=st.integers(0, 15),
    lock=st.integers(1, 16),
    hooks=bools16,
    items=bools16,
    polarity=st.sampled_from([0, 1]),
)
def test_status_reply_round_trip(
    board: int, lock: int, hooks: list[bool], items: list[bool], polarity: int
) -> None:
    data = kerong.status_reply(board, hooks, items, polarity, lock=lock)
    assert len(data) == kerong.REPLY_LENGTH
    assert data[-1] == sum(data[:-1]) & 0xFF
    status = kerong.parse_status(data, polarity)
    assert status.board == board
    assert status.addr & 0x0F == lock - 1
    assert list(status.hooks_closed) == hooks
    assert list(status.items_present) == items


def test_polarity_flips_the_meaning_of_hook_bits() -> None:
    hooks = [True] + [False] * 15
    raw_closed_is_one = kerong.status_reply(0, hooks, [False] * 16, 1)
    assert raw_closed_is_one[3:5] == bytes([0x01, 0x00])
    raw_closed_is_zero = kerong.status_reply(0, hooks, [False] * 16, 0)
    assert raw_closed_is_zero[3:5] == bytes([0xFE, 0xFF])
    # Read with the wrong polarity, every door looks inverted: that is why it is a setting.
    assert kerong.parse_status(raw_closed_is_zero, 1).hooks_closed[0] is False
    assert kerong.parse_status(raw_closed_is_zero, 0).hook_closed(1) is True
    with pytest.raises(FrameError):
        kerong.parse_status(raw_closed_is_one, 2)


def test_fewer_locks_pad_as_open() -> None:
    for polarity in (0, 1):
        status = kerong.parse_status(
            kerong.status_reply(0, [True] * 4, [True] * 4, polarity), polarity
        )
        assert status.hooks_closed == (True,) * 4 + (False,) * 12
        assert status.items_present == (True,) * 4 + (False,) * 12


def test_parse_frame_errors() -> None:
    good = kerong.status_reply(0, [True] * 16, [False] * 16)
    with pytest.raises(FrameError) as info:
        kerong.parse_status(good[:-1] + bytes([good[-1] ^ 1]))
    assert info.value.code == "BAD_CHECKSUM"
    for bad in (b"", good[:-1], b"\x01" + good[1:], good[:2] + b"\x99" + good[3:]):
        with pytest.raises(FrameError) as info:
            kerong.parse_status(bad)
        assert info.value.code == "BAD_FRAME"
    with pytest.raises(FrameError):
        kerong.parse_status(kerong.unlock_frame(0, 1))  # a request is not a status reply


frames = st.one_of(
    st.builds(kerong.unlock_frame, st.integers(0, 15), st.integers(1, 16)),
    st.builds(kerong.status_frame, st.integers(0, 15)),
    st.just(kerong.status_all_frame()),
    st.builds(
        lambda b, lock, h, i, p: kerong.status_reply(b, h, i, p, lock=lock),
        st.integers(0, 15),
        st.integers(1, 16),
        bools16,
        bools16,
        st.sampled_from([0, 1]),
    ),
)
# Garbage without STX cannot start a false frame, so the decoded output must be exact.
garbage = st.binary(max_size=12).map(lambda b: b.replace(b"\x02", b"\x55"))


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(
    items=st.lists(st.tuples(garbage, frames), max_size=12),
    tail=garbage,
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
)
def test_decoder_recovers_every_frame_from_garbage_split_anywhere(
    items: list[tuple[bytes, bytes]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(g + f for g, f in items) + tail
    decoder = kerong.FrameDecoder()
    decoded = []
    for piece in _split(stream, cuts):
        decoded.extend(decoder.feed(piece))
    assert [frame.to_bytes() for frame in decoded] == [f for _, f in items]
    assert decoder.discarded_bytes == sum(len(g) for g, _ in items) + len(tail)
    assert decoder.pending == 0


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(noise=st.binary(max_size=400), frame=frames)
def test_decoder_survives_arbitrary_noise(noise: bytes, frame: bytes) -> None:
    decoder = kerong.FrameDecoder()
    decoded = decoder.feed(noise)
    for item in decoded:  # whatever it finds in noise is at least a well-formed frame
        assert kerong.parse_frame(item.to_bytes()) == item
    assert decoder.pending < kerong.MAX_FRAME_LENGTH
    # After noise, a real frame preceded by a gap of non-STX bytes is found again.
    found = decoder.feed(b"\x00" * kerong.MAX_FRAME_LENGTH + frame)
    assert found
    assert found[-1].to_bytes() == frame


def test_decoder_counts_checksum_errors_and_keeps_going() -> None:
    good = kerong.status_reply(1, [True] * 16, [False] * 16)
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    decoder = kerong.FrameDecoder()
    found = decoder.feed(corrupt + good)
    assert [f.to_bytes() for f in found] == [good]
    assert decoder.checksum_errors == 1
    assert decoder.discarded_bytes == len(corrupt)


def test_decoder_waits_for_partial_frames_and_reset_drops_them() -> None:
    frame = kerong.unlock_frame(0, 2)
    decoder = kerong.FrameDecoder()
    assert decoder.feed(frame[:3]) == []
    assert decoder.pending == 3
    assert [f.to_bytes() for f in decoder.feed(frame[3:])] == [frame]
    decoder.feed(frame[:2])
    decoder.reset()
    assert decoder.pending == 0
    assert decoder.discarded_bytes == 2
    assert decoder.frames_decoded == 1
