"""QR scanner / keypad input: lines from a serial scanner (reopened when unplugged) or stdin."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

import serial

log = logging.getLogger(__name__)

MAX_LINE = 2048  # longer than any token we issue: a stuck scanner must not grow memory
_SPLIT = re.compile(rb"[\r\n]+")


class LineSplitter:
    """Bytes in, complete lines out; CR, LF and CR LF all end a line."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        *complete, rest = _SPLIT.split(bytes(self._buffer))
        self._buffer = bytearray(rest[-MAX_LINE:])
        return [c.decode("utf-8", "replace").strip() for c in complete if c.strip()]


class SerialScanner:
    """Reads a serial scanner on its own thread and hands each line to ``on_line``."""

    def __init__(
        self,
        port: str,
        baud: int,
        on_line: Callable[[str], object],
        *,
        reopen_backoff_max_s: float = 5.0,
    ) -> None:
        self.port_name, self.baud, self.on_line = port, baud, on_line
        self.reopen_backoff_max_s = reopen_backoff_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> SerialScanner:
        self._thread = threading.Thread(target=self._run, name="scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                port = serial.Serial(self.port_name, self.baud, timeout=0.05, write_timeout=1)
            except (serial.SerialException, OSError) as exc:
                backoff = min(max(backoff * 2, 0.1), self.reopen_backoff_max_s)
                log.warning("scanner %s unavailable (%s); retry in %.1fs", self.port_name, exc,
                            backoff)  # fmt: skip
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            # Whatever the adapter buffered before we opened it was not scanned for us.
            port.reset_input_buffer()
            self.connected.set()
            splitter = LineSplitter()
            try:
                while not self._stop.is_set():
                    data = port.read(max(1, port.in_waiting))
                    for line in splitter.feed(data):
                        self.on_line(line)
            except (serial.SerialException, OSError) as exc:
                log.warning("scanner %s lost (%s); reopening", self.port_name, exc)
            finally:
                self.connected.clear()
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    log.debug("closing scanner port failed", exc_info=True)


class StdinScanner:
    """Development input: each line typed on stdin is a scan."""

    def __init__(self, on_line: Callable[[str], object], stream: TextIO | None = None) -> None:
        self.on_line = on_line
        self.stream = stream or sys.stdin
        self._thread: threading.Thread | None = None

    def start(self) -> StdinScanner:
        self._thread = threading.Thread(target=self._run, name="stdin-scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """The thread blocks in readline; it is a daemon and ends with the process."""

    def _run(self) -> None:
        for line in self.stream:
            if line.strip():
                self.on_line(line.strip()[:MAX_LINE])
