"""A bus of Kerong KR-CU16 lock boards with door physics and fault injection.

Physics, per lock: an unlock releases the hook (unless the lock is stuck) and the door
swings open ``door_open_delay`` seconds later; a door closes when told (or after
``auto_close`` seconds, if set) and the hook re-latches as it closes. The status reply's
hook bit reports the hook: closed only while latched. Infrared bits report items.

Every command is answered with a status reply of the addressed board (see
``edge.protocol.kerong``); frames for boards or locks that do not exist get no answer,
as on a real RS485 bus.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from edge.protocol import kerong
from edge.protocol.compartments import compartment_id, parse_compartment
from edge.protocol.errors import ProtocolError
from firmware_sim.control import req_bool as _bool
from firmware_sim.control import req_float as _float
from firmware_sim.control import req_int as _int
from firmware_sim.control import req_str as _str
from firmware_sim.device import SerialDevice
from firmware_sim.errors import DeviceError, SimError


@dataclass
class LockState:
    latched: bool = True
    door_open: bool = False
    item: bool = False
    stuck: bool = False
    hold_open: bool = False
    swing_at: float | None = None
    close_at: float | None = None
    unlocks: int = 0


@dataclass
class Faults:
    no_reply: bool = False
    slow_reply_ms: int = 0
    garbage_every: int = 0
    bad_checksum: int = 0


class LockBoardSim(SerialDevice):
    """``boards`` Kerong boards of ``locks`` locks each, answering on one pty."""

    name = "lockboard"

    def __init__(
        self,
        link: str | os.PathLike[str],
        *,
        boards: int = 1,
        locks: int = 16,
        polarity_closed_bit: int = 1,
        door_open_delay: float = 0.3,
        auto_close: float | None = None,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        on_frame: Callable[[kerong.Frame, float], None] | None = None,
    ) -> None:
        """``on_frame(frame, clock_time)`` runs in the I/O thread for every frame received,
        before it is answered: benchmarks use it to time-stamp unlocks as they arrive."""
        super().__init__(link, clock=clock)
        if not 1 <= boards <= 16 or not 1 <= locks <= 16:
            raise SimError("boards and locks must each be 1-16", code="BAD_REQUEST")
        if polarity_closed_bit not in (0, 1):
            raise SimError("polarity_closed_bit must be 0 or 1", code="BAD_REQUEST")
        self.boards, self.locks = boards, locks
        self.polarity_closed_bit = polarity_closed_bit
        self.door_open_delay = door_open_delay
        self.auto_close = auto_close
        self.faults = Faults()
        self._random = random.Random(seed)
        self._decoder = kerong.FrameDecoder()
        self._state = {
            (board, lock): LockState() for board in range(boards) for lock in range(1, locks + 1)
        }
        self.frames_received = 0
        self.replies_sent = 0
        self._on_frame = on_frame

    # --- helpers --------------------------------------------------------------------

    def _lock(self, compartment: str) -> LockState:
        try:
            key = parse_compartment(compartment)
        except ProtocolError as exc:
            raise DeviceError(str(exc), code="BAD_COMPARTMENT") from exc
        if key not in self._state:
            raise DeviceError(f"no compartment {compartment} on this bus", code="BAD_COMPARTMENT")
        return self._state[key]

    def _reply(self, board: int, lock: int = 1) -> bytes:
        hooks = [self._state[(board, n)].latched for n in range(1, self.locks + 1)]
        items = [self._state[(board, n)].item for n in range(1, self.locks + 1)]
        return kerong.status_reply(board, hooks, items, self.polarity_closed_bit, lock=lock)

    def _garbage(self, count: int) -> bytes:
        return bytes(self._random.randrange(256) for _ in range(count))

    # --- the bus --------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            self.frames_received += 1
            if self._on_frame is not None:
                self._on_frame(frame, self.clock())
            self._answer(frame)

    def _answer(self, frame: kerong.Frame) -> None:
        replies: list[bytes] = []
        if frame.cmd == kerong.CMD_UNLOCK:
            if frame.board < self.boards and frame.lock <= self.locks:
                self._unlock(frame.board, frame.lock)
                replies.append(self._reply(frame.board, frame.lock))
        elif frame.cmd == kerong.CMD_STATUS:
            if frame.board < self.boards:
                replies.append(self._reply(frame.board))
        elif frame.cmd == kerong.CMD_STATUS_ALL:
            replies.extend(self._reply(board) for board in range(self.boards))
        # A 0x35 status reply on the bus comes from another board: not ours to answer.
        if not replies or self.faults.no_reply:
            return
        delay = self.faults.slow_reply_ms / 1000
        for reply in replies:
            if self.faults.bad_checksum > 0:
                self.faults.bad_checksum -= 1
                reply = reply[:-1] + bytes([reply[-1] ^ 0xA5])
            if self.faults.garbage_every:
                reply = self._garbage(self.faults.garbage_every) + reply
            self.send(reply, delay=delay)
            self.replies_sent += 1

    def _unlock(self, board: int, lock: int) -> None:
        state = self._state[(board, lock)]
        state.unlocks += 1
        if state.stuck:
            return
        state.latched = False
        if not state.door_open and state.swing_at is None:
            state.swing_at = self.clock() + self.door_open_delay

    def on_tick(self, now: float) -> None:
        for state in self._state.values():
            if state.swing_at is not None and now >= state.swing_at:
                state.swing_at = None
                state.door_open = True
                if self.auto_close is not None and not state.hold_open:
                    state.close_at = now + self.auto_close
            if state.close_at is not None and now >= state.close_at:
                self._close(state)

    @staticmethod
    def _close(state: LockState) -> None:
        state.door_open = False
        state.latched = True
        state.swing_at = state.close_at = None
        state.hold_open = False

    # --- the physical world (tests and the control socket) --------------------------

    def open_door(self, compartment: str, *, force: bool = False) -> None:
        """A person pulls the door; a latched door opens only with ``force`` (tamper)."""
        with self.lock:
            state = self._lock(compartment)
            if state.latched and not force:
                raise DeviceError(f"{compartment} is latched", code="LOCKED")
            state.latched = False
            state.door_open = True
            state.swing_at = None

    def close_door(self, compartment: str) -> None:
        with self.lock:
            self._close(self._lock(compartment))

    def place_item(self, compartment: str, *, force: bool = False) -> None:
        self._set_item(compartment, True, force)

    def remove_item(self, compartment: str, *, force: bool = False) -> None:
        self._set_item(compartment, False, force)

    def _set_item(self, compartment: str, present: bool, force: bool) -> None:
        with self.lock:
            state = self._lock(compartment)
            if not state.door_open and not force:
                raise DeviceError(f"{compartment}: the door is closed", code="DOOR_CLOSED")
            state.item = present

    # --- faults ---------------------------------------------------------------------

    def set_no_reply(self, on: bool) -> None:
        with self.lock:
            self.faults.no_reply = on

    def set_slow_reply(self, ms: int) -> None:
        if ms < 0:
            raise SimError("slow_reply must be >= 0 ms", code="BAD_REQUEST")
        with self.lock:
            self.faults.slow_reply_ms = ms

    def inject_garbage(self, count: int) -> None:
        """Put ``count`` random bytes on the bus now."""
        if count < 0:
            raise SimError("garbage count must be >= 0", code="BAD_REQUEST")
        with self.lock:
            self.send(self._garbage(count))

    def set_garbage_every(self, count: int) -> None:
        """Prefix every reply with ``count`` random bytes (0 turns it off)."""
        if count < 0:
            raise SimError("garbage count must be >= 0", code="BAD_REQUEST")
        with self.lock:
            self.faults.garbage_every = count

    def set_bad_checksum(self, count: int) -> None:
        """Corrupt the checksum of the next ``count`` replies."""
        if count < 0:
            raise SimError("bad_checksum count must be >= 0", code="BAD_REQUEST")
        with self.lock:
            self.faults.bad_checksum = count

    def set_stuck(self, compartment: str, stuck: bool = True) -> None:
        """A stuck lock ignores unlock commands; its hook stays latched."""
        with self.lock:
            self._lock(compartment).stuck = stuck

    def door_left_open(self, compartment: str) -> None:
        """Nobody will close this door: cancel any auto-close until it is closed by hand."""
        with self.lock:
            state = self._lock(compartment)
            state.hold_open = True
            state.close_at = None

    # --- inspection -----------------------------------------------------------------

    def unlock_count(self, compartment: str) -> int:
        with self.lock:
            return self._lock(compartment).unlocks

    def get_state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "boards": self.boards,
                "locks": self.locks,
                "polarity_closed_bit": self.polarity_closed_bit,
                "plugged": self.plugged,
                "link": str(self.link),
                "pty": self.pty_path,
                "faults": asdict(self.faults),
                "frames_received": self.frames_received,
                "replies_sent": self.replies_sent,
                "checksum_errors": self._decoder.checksum_errors,
                "compartments": {
                    compartment_id(board, lock): {
                        "door": "open" if s.door_open else "closed",
                        "latched": s.latched,
                        "item": s.item,
                        "stuck": s.stuck,
                        "unlocks": s.unlocks,
                    }
                    for (board, lock), s in self._state.items()
                },
            }

    # --- control API ----------------------------------------------------------------

    def handle_control(self, request: dict[str, Any]) -> Any:
        """Dispatch one control-socket request ``{"action": ..., ...}``."""
        action = request.get("action")
        actions: dict[str, Callable[[], Any]] = {
            "get_state": self.get_state,
            "open_door": lambda: self.open_door(
                _str(request, "compartment"), force=bool(request.get("force", False))
            ),
            "close_door": lambda: self.close_door(_str(request, "compartment")),
            "place_item": lambda: self.place_item(
                _str(request, "compartment"), force=bool(request.get("force", False))
            ),
            "remove_item": lambda: self.remove_item(
                _str(request, "compartment"), force=bool(request.get("force", False))
            ),
            "no_reply": lambda: self.set_no_reply(_bool(request, "on")),
            "slow_reply": lambda: self.set_slow_reply(_int(request, "ms")),
            "garbage": lambda: (
                self.set_garbage_every(_int(request, "count"))
                if request.get("every")
                else self.inject_garbage(_int(request, "count"))
            ),
            "bad_checksum": lambda: self.set_bad_checksum(_int(request, "count")),
            "stuck_lock": lambda: self.set_stuck(
                _str(request, "compartment"), bool(request.get("on", True))
            ),
            "door_left_open": lambda: self.door_left_open(_str(request, "compartment")),
            "unplug": lambda: self.unplug(_float(request, "seconds")),
        }
        if action not in actions:
            raise SimError(
                f"unknown action {action!r}; one of {', '.join(actions)}", code="UNKNOWN_ACTION"
            )
        return actions[str(action)]()
