"""Compartment ids ``"<board>-<lock>"``: board address 0-15, lock 1-16 as printed on the board."""

from __future__ import annotations

import re

from edge.protocol.errors import ProtocolError

MAX_BOARDS = 16
LOCKS_PER_BOARD = 16
# Canonical only ("0-1", never "00-01"): ids are compared as strings across the system.
COMPARTMENT_RE = re.compile(r"^(0|[1-9][0-9]?)-([1-9][0-9]?)$")


def compartment_id(board: int, lock: int) -> str:
    """``compartment_id(0, 1) == "0-1"``; ProtocolError(BAD_COMPARTMENT) when out of range."""
    check_board_lock(board, lock)
    return f"{board}-{lock}"


def parse_compartment(value: str) -> tuple[int, int]:
    """Inverse of :func:`compartment_id`."""
    match = COMPARTMENT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ProtocolError(
            f"invalid compartment {value!r}: expected '<board>-<lock>' like '0-1'",
            code="BAD_COMPARTMENT",
        )
    board, lock = int(match.group(1)), int(match.group(2))
    check_board_lock(board, lock)
    return board, lock


def check_board_lock(board: int, lock: int) -> None:
    if not 0 <= board < MAX_BOARDS:
        raise ProtocolError(f"board {board} out of range 0-15", code="BAD_COMPARTMENT")
    if not 1 <= lock <= LOCKS_PER_BOARD:
        raise ProtocolError(f"lock {lock} out of range 1-16", code="BAD_COMPARTMENT")
