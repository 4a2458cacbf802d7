"""Tests of compartment ids ``"<board>-<lock>"``."""

from __future__ import annotations

import pytest

from edge.protocol.compartments import compartment_id, parse_compartment
from edge.protocol.errors import ProtocolError


@pytest.mark.parametrize(("board", "lock"), [(0, 1), (0, 16), (15, 1), (15, 16), (10, 9)])
def test_round_trip(board: int, lock: int) -> None:
    assert parse_compartment(compartment_id(board, lock)) == (board, lock)


@pytest.mark.parametrize(
    "value", ["", "0", "0-0", "0-17", "16-1", "00-1", "0-01", "-1-1", "a-b", "0_1", " 0-1", "0-1\n"]
)
def test_invalid_or_non_canonical(value: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_compartment(value)
    assert info.value.code == "BAD_COMPARTMENT"


def test_compartment_id_range() -> None:
    with pytest.raises(ProtocolError):
        compartment_id(16, 1)
    with pytest.raises(ProtocolError):
        compartment_id(0, 0)
