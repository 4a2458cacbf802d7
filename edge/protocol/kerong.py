"""Kerong KR-CU16 lock-board codec: frame building, checksums, status parsing, stream resync.

Wire format (RS485, 19200 8N1)::

    request  02 ADDR CMD 03 SUM
    reply    02 ADDR 35 H1 H2 IR1 IR2 03 SUM

``ADDR = board << 4 | nibble`` and ``SUM`` is the low byte of the sum of every earlier byte.
Locks are numbered 1-16 as printed on the board; the address nibble is ``lock - 1``, which is
what makes the reference example hold: unlock board 0 lock 1 = ``02 00 31 03 36``.

Commands: ``0x30`` status of one board (nibble 0), ``0x31`` unlock one lock, ``0x32`` status
of all boards (address ``00``; every board on the bus answers in address order).

Replies: the board answers *every* command, an unlock included, with a ``0x35`` status reply
whose ADDR echoes the request's ADDR; the data reflects the board right after the command.
``H1`` holds locks 1-8 (bit 0 = lock 1), ``H2`` locks 9-16; ``IR1``/``IR2`` likewise hold the
infrared item-present bits (1 = item present). Which hook-bit value means "closed" differs
between board batches, hence ``polarity_closed_bit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.protocol.compartments import LOCKS_PER_BOARD, MAX_BOARDS, check_board_lock
from edge.protocol.errors import FrameError

STX = 0x02
ETX = 0x03
CMD_STATUS = 0x30
CMD_UNLOCK = 0x31
CMD_STATUS_ALL = 0x32
CMD_STATUS_REPLY = 0x35
# Data bytes between CMD and ETX for every command the codec knows; unknown CMD = garbage.
DATA_LENGTH = {CMD_STATUS: 0, CMD_UNLOCK: 0, CMD_STATUS_ALL: 0, CMD_STATUS_REPLY: 4}
REQUEST_LENGTH = 5
REPLY_LENGTH = 9
MAX_FRAME_LENGTH = REPLY_LENGTH


def checksum(data: bytes | bytearray) -> int:
    """Low byte of the sum of ``data``."""
    return sum(data) & 0xFF


@dataclass(frozen=True)
class Frame:
    """One checked frame: ``addr``, ``cmd`` and the data bytes between CMD and ETX."""

    addr: int
    cmd: int
    data: bytes = b""

    @property
    def board(self) -> int:
        return self.addr >> 4

    @property
    def lock(self) -> int:
        """1-based lock number addressed by the frame's low nibble."""
        return (self.addr & 0x0F) + 1

    def to_bytes(self) -> bytes:
        body = bytes((STX, self.addr, self.cmd, *self.data, ETX))
        return body + bytes((checksum(body),))


@dataclass(frozen=True)
class BoardStatus:
    """Decoded status reply; tuples are indexed by lock - 1 (index 0 = lock 1)."""

    board: int
    addr: int
    hooks_closed: tuple[bool, ...]
    items_present: tuple[bool, ...]

    def hook_closed(self, lock: int) -> bool:
        return self.hooks_closed[lock - 1]

    def item_present(self, lock: int) -> bool:
        return self.items_present[lock - 1]


def _address(board: int, lock: int) -> int:
    check_board_lock(board, lock)
    return board << 4 | (lock - 1)


def _check_board(board: int) -> None:
    if not 0 <= board < MAX_BOARDS:
        raise FrameError(f"board {board} out of range 0-15", code="BAD_COMPARTMENT")


def unlock_frame(board: int, lock: int) -> bytes:
    """``unlock_frame(0, 1) == bytes.fromhex("0200310336")``."""
    return Frame(_address(board, lock), CMD_UNLOCK).to_bytes()


def status_frame(board: int) -> bytes:
    _check_board(board)
    return Frame(board << 4, CMD_STATUS).to_bytes()


def status_all_frame() -> bytes:
    return Frame(0x00, CMD_STATUS_ALL).to_bytes()


def _pack_bits(values: Sequence[bool]) -> tuple[int, int]:
    if len(values) > LOCKS_PER_BOARD:
        raise FrameError(f"at most {LOCKS_PER_BOARD} locks per board, got {len(values)}")
    word = 0
    for index, value in enumerate(values):
        if value:
            word |= 1 << index
    return word & 0xFF, word >> 8


def _unpack_bits(low: int, high: int) -> tuple[bool, ...]:
    word = low | high << 8
    return tuple(bool(word >> index & 1) for index in range(LOCKS_PER_BOARD))


def _check_polarity(polarity_closed_bit: int) -> None:
    if polarity_closed_bit not in (0, 1):
        raise FrameError(f"polarity_closed_bit must be 0 or 1, not {polarity_closed_bit!r}")


def status_reply(
    board: int,
    hooks_closed: Sequence[bool],
    items_present: Sequence[bool],
    polarity_closed_bit: int = 1,
    *,
    lock: int = 1,
) -> bytes:
    """Build a status reply (simulator side); ``lock`` sets the echoed address nibble.

    Locks beyond ``len(hooks_closed)`` are reported as the "open" bit value, like an
    unwired input on a real board.
    """
    _check_polarity(polarity_closed_bit)
    addr = _address(board, lock)
    raw_hooks = [closed == bool(polarity_closed_bit) for closed in hooks_closed]
    if not polarity_closed_bit:
        raw_hooks += [True] * (LOCKS_PER_BOARD - len(raw_hooks))
    h1, h2 = _pack_bits(raw_hooks)
    ir1, ir2 = _pack_bits(list(items_present))
    return Frame(addr, CMD_STATUS_REPLY, bytes((h1, h2, ir1, ir2))).to_bytes()


def parse_frame(frame: bytes) -> Frame:
    """Check one complete frame (STX, known CMD, length, ETX, SUM) and return it."""
    if len(frame) < REQUEST_LENGTH or frame[0] != STX:
        raise FrameError(f"not a Kerong frame: {frame.hex(' ')}")
    cmd = frame[2]
    if cmd not in DATA_LENGTH:
        raise FrameError(f"unknown Kerong command 0x{cmd:02x}: {frame.hex(' ')}")
    expected = REQUEST_LENGTH + DATA_LENGTH[cmd]
    if len(frame) != expected or frame[-2] != ETX:
        raise FrameError(f"bad Kerong frame length or ETX: {frame.hex(' ')}")
    if checksum(frame[:-1]) != frame[-1]:
        raise FrameError(f"bad Kerong checksum: {frame.hex(' ')}", code="BAD_CHECKSUM")
    return Frame(frame[1], cmd, bytes(frame[3:-2]))


def status_from_frame(frame: Frame, polarity_closed_bit: int = 1) -> BoardStatus:
    _check_polarity(polarity_closed_bit)
    if frame.cmd != CMD_STATUS_REPLY or len(frame.data) != 4:
        raise FrameError(f"not a status reply: cmd 0x{frame.cmd:02x}")
    h1, h2, ir1, ir2 = frame.data
    raw = _unpack_bits(h1, h2)
    return BoardStatus(
        board=frame.board,
        addr=frame.addr,
        hooks_closed=tuple(bit == bool(polarity_closed_bit) for bit in raw),
        items_present=_unpack_bits(ir1, ir2),
    )


def parse_status(frame: bytes, polarity_closed_bit: int = 1) -> BoardStatus:
    """Parse a complete ``02 ADDR 35 H1 H2 IR1 IR2 03 SUM`` reply."""
    return status_from_frame(parse_frame(frame), polarity_closed_bit)


class FrameDecoder:
    """Streaming decoder: feed it whatever the port returned, get whole checked frames.

    Bytes before an STX, and any candidate frame whose CMD, ETX or SUM is wrong, are dropped
    one byte at a time so a real frame hidden right after garbage is still found. A partial
    frame at the end of a feed waits for the next feed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded_bytes = 0
        self.checksum_errors = 0
        self.frames_decoded = 0

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget a partial frame, e.g. after reopening the port."""
        self.discarded_bytes += len(self._buffer)
        self._buffer.clear()

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self.discarded_bytes += count

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        frames: list[Frame] = []
        buf = self._buffer
        while buf:
            start = buf.find(STX)
            if start < 0:
                self._drop(len(buf))
                break
            if start:
                self._drop(start)
            if len(buf) < 3:
                break
            cmd = buf[2]
            if cmd not in DATA_LENGTH:
                self._drop(1)
                continue
            length = REQUEST_LENGTH + DATA_LENGTH[cmd]
            if len(buf) < length:
                break
            if buf[length - 2] != ETX:
                self._drop(1)
                continue
            if checksum(buf[: length - 1]) != buf[length - 1]:
                self.checksum_errors += 1
                self._drop(1)
                continue
            frames.append(Frame(buf[1], cmd, bytes(buf[3 : length - 2])))
            del buf[:length]
            self.frames_decoded += 1
        return frames
