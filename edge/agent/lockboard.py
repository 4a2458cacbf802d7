"""Lock boards: the ``LockBoard`` port and the Kerong CU16 driver over pyserial (RS485).

One worker thread owns the serial port, so exactly one request is on the bus at a time;
callers queue requests and wait on a future. The worker resynchronises on garbage through
``FrameDecoder``, gives every request a deadline, and when the USB adapter disappears it
fails pending requests fast and reopens the port with capped backoff, so the rest of the
agent keeps running. Every pyserial call has a timeout (pyserial #331/#341: blocking reads
and writes on a vanished device hang forever).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import serial

from edge.agent.errors import SerialLinkError, UnlockFailedError
from edge.protocol import kerong
from edge.protocol.errors import FrameError
from edge.protocol.kerong import BoardStatus

log = logging.getLogger(__name__)

PortOpener = Callable[[], serial.Serial]


class LockBoard(ABC):
    """What the agent needs from any lock controller (Kerong today; Winnsen, WKLY later)."""

    @abstractmethod
    def read_status(self, board: int) -> BoardStatus:
        """Hooks and infrared bits of one board; SerialLinkError when it does not answer."""

    @abstractmethod
    def send_unlock(self, board: int, lock: int) -> None:
        """Pulse one lock; SerialLinkError when the board does not answer."""

    def close(self) -> None:  # noqa: B027 - optional hook, most fakes hold nothing
        """Release the port."""

    def unlock(
        self,
        board: int,
        lock: int,
        *,
        confirm_s: float,
        retries: int,
        poll_s: float = 0.05,
        stop: threading.Event | None = None,
    ) -> BoardStatus:
        """Unlock and confirm through status polling; UnlockFailedError if never confirmed.

        Returns the confirming status, so the caller sees the door open even if it is shut
        again before the next regular poll.

        A door that was already open counts as confirmed: the lock did release at some point
        and the shopper is in front of it. ``retries`` extra unlock frames are sent when a
        confirm window passes without the hook reading open (a missed pulse on a noisy bus).
        """
        waiter = stop or threading.Event()
        last_error: SerialLinkError | None = None
        answered = False
        for _attempt in range(retries + 1):
            try:
                self.send_unlock(board, lock)
                answered = True
            except SerialLinkError as exc:
                last_error = exc
                continue
            deadline = time.monotonic() + confirm_s
            while time.monotonic() < deadline:
                try:
                    status = self.read_status(board)
                    if not status.hook_closed(lock):
                        return status
                except SerialLinkError as exc:
                    last_error = exc
                if waiter.wait(poll_s):
                    break
            if waiter.is_set():
                break  # stopping: never pulse a lock again on the way out
        if not answered and last_error is not None:
            raise UnlockFailedError(
                f"board {board} lock {lock}: {last_error.message}", code="UNLOCK_NO_REPLY"
            ) from last_error
        raise UnlockFailedError(
            f"board {board} lock {lock} still reads closed after {retries + 1} unlock(s)"
        )


@dataclass
class _Request:
    frame: bytes
    reply_addr: int
    future: Future[kerong.Frame] = field(default_factory=Future)


class KerongBoard(LockBoard):
    """Kerong KR-CU16 boards on one RS485 bus, driven by a single serial worker thread."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 19200,
        polarity_closed_bit: int = 1,
        reply_timeout_s: float = 0.3,
        reopen_backoff_max_s: float = 5.0,
        opener: PortOpener | None = None,
    ) -> None:
        self.port_name = port
        self.baud = baud
        self.polarity_closed_bit = polarity_closed_bit
        self.reply_timeout_s = reply_timeout_s
        self.reopen_backoff_max_s = reopen_backoff_max_s
        self._opener = opener or self._open_default
        self._requests: queue.Queue[_Request] = queue.Queue(maxsize=64)
        self._decoder = kerong.FrameDecoder()
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.reopen_count = 0
        self.timeouts = 0
        self.last_open_error: str | None = None

    # --- public API --------------------------------------------------------------------

    def start(self) -> KerongBoard:
        self._thread = threading.Thread(target=self._run, name="kerong-serial", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_port()

    @property
    def garbage_bytes(self) -> int:
        return self._decoder.discarded_bytes

    def read_status(self, board: int) -> BoardStatus:
        frame = self._call(kerong.status_frame(board), reply_addr=board << 4)
        return self._status(frame)

    def send_unlock(self, board: int, lock: int) -> None:
        request = kerong.unlock_frame(board, lock)
        self._call(request, reply_addr=request[1])

    # --- worker ------------------------------------------------------------------------

    def _status(self, frame: kerong.Frame) -> BoardStatus:
        try:
            return kerong.status_from_frame(frame, self.polarity_closed_bit)
        except FrameError as exc:
            raise SerialLinkError(f"unexpected reply: {exc}", code="SERIAL_BAD_REPLY") from exc

    def _call(self, frame: bytes, *, reply_addr: int) -> kerong.Frame:
        if self._stop.is_set():
            raise SerialLinkError("lock board driver is closed")
        if not self.connected.wait(self.reply_timeout_s):
            # Fail fast while the adapter is out instead of queueing behind the reopen backoff
            # (the short wait covers the first open right after start()).
            raise SerialLinkError(f"serial port {self.port_name} is not open")
        request = _Request(frame, reply_addr)
        try:
            self._requests.put(request, timeout=self.reply_timeout_s * 4)
        except queue.Full as exc:
            raise SerialLinkError("serial request queue is full", code="SERIAL_BUSY") from exc
        # The worker answers every request within its own deadline; the margin covers the
        # queue ahead of us, so a wedged worker still cannot hang a caller forever.
        wait = self.reply_timeout_s * (self._requests.qsize() + 2) + 1.0
        try:
            return request.future.result(timeout=wait)
        except TimeoutError as exc:
            request.future.cancel()
            raise SerialLinkError("serial worker did not answer", code="SERIAL_TIMEOUT") from exc

    def _open_default(self) -> serial.Serial:
        return serial.Serial(
            self.port_name,
            self.baud,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=0.02,
            write_timeout=1.0,
            exclusive=True,
        )

    def _close_port(self) -> None:
        port, self._port = self._port, None
        self.connected.clear()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                log.debug("closing a dead serial port failed", exc_info=True)

    def _fail_pending(self, reason: str) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(SerialLinkError(reason))

    def _ensure_open(self, backoff: float) -> float:
        """Open the port if needed; returns the next backoff (0 when open)."""
        if self._port is not None:
            return 0.0
        try:
            self._port = self._opener()
        except (serial.SerialException, OSError, ValueError) as exc:
            self.last_open_error = str(exc)
            self._fail_pending(f"serial port {self.port_name} unavailable: {exc}")
            backoff = min(max(backoff * 2, 0.1), self.reopen_backoff_max_s)
            log.warning("lock bus %s unavailable, retry in %.1fs: %s", self.port_name, backoff, exc)
            self._stop.wait(backoff)
            return backoff
        self.reopen_count += 1
        self._decoder.reset()
        self.connected.set()
        log.info("lock bus %s open", self.port_name)
        return 0.0

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            backoff = self._ensure_open(backoff)
            if self._port is None:
                continue
            try:
                request = self._requests.get(timeout=0.1)
            except queue.Empty:
                continue
            if not request.future.set_running_or_notify_cancel():
                continue
            try:
                request.future.set_result(self._transact(self._port, request))
            except SerialLinkError as exc:
                request.future.set_exception(exc)
            except (serial.SerialException, OSError) as exc:
                log.warning("lock bus %s failed, reopening: %s", self.port_name, exc)
                self._close_port()
                request.future.set_exception(SerialLinkError(f"serial port lost: {exc}"))

    def _transact(self, port: serial.Serial, request: _Request) -> kerong.Frame:
        # Whatever arrived since the last request (late replies, line noise) is stale.
        if port.in_waiting:
            self._decoder.feed(port.read(port.in_waiting))
        self._decoder.reset()
        port.write(request.frame)
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            for frame in self._decoder.feed(chunk):
                if frame.cmd == kerong.CMD_STATUS_REPLY and frame.addr == request.reply_addr:
                    return frame
        self.timeouts += 1
        raise SerialLinkError(
            f"no reply to {request.frame.hex(' ')} within {self.reply_timeout_s}s",
            code="SERIAL_TIMEOUT",
        )
