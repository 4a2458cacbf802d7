"""The I/O loop every simulated serial device shares: one thread, one pty, timed replies.

One thread owns the pty so replies leave in order; other threads (tests, the control
socket) only change state under ``self.lock`` and wake the loop through a pipe.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_sim.errors import SimError
from firmware_sim.pty_link import PtyLink

log = logging.getLogger(__name__)
_TICK_SECONDS = 0.02  # how often door physics and profiles advance when the bus is quiet


class SerialDevice:
    """Base class: subclasses implement :meth:`on_data` and may override :meth:`on_tick`."""

    name = "device"

    def __init__(self, link: str | os.PathLike[str], *, clock: Callable[[], float] | None = None):
        self.clock = clock or time.monotonic
        self.lock = threading.RLock()
        self._pty = PtyLink(link)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._outbox: list[tuple[float, int, bytes]] = []
        self._order = itertools.count()
        self._replug_at: float | None = None
        self.bytes_received = 0
        self.bytes_sent = 0

    # --- lifecycle ------------------------------------------------------------------

    @property
    def link(self) -> Path:
        return self._pty.link

    @property
    def pty_path(self) -> str | None:
        return self._pty.pty_path

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise SimError(f"{self.name} already started", code="ALREADY_RUNNING")
        self._pty.open()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, close the pty and remove the symlink; safe to call twice."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self.lock:
            self._pty.close()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> SerialDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wake(self) -> None:
        if self._wake_w >= 0:
            # A full pipe means the loop is already due to wake up.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    # --- for subclasses -------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def handle_control(self, request: dict[str, Any]) -> Any:
        """Answer one control-socket request ``{"action": ...}``; subclasses extend it."""
        raise SimError(f"{self.name} has no control API", code="UNKNOWN_ACTION")

    def on_tick(self, now: float) -> None:
        """Advance time-driven state; called on every loop turn under ``self.lock``."""

    def send(self, data: bytes, *, delay: float = 0.0) -> None:
        """Queue bytes for the pty, after ``delay`` seconds; order is kept for equal times."""
        with self.lock:
            heapq.heappush(self._outbox, (self.clock() + delay, next(self._order), data))
        self.wake()

    def unplug(self, seconds: float) -> None:
        """Close the pty now (clients get I/O errors) and publish a new one after ``seconds``."""
        if seconds < 0:
            raise SimError("unplug seconds must be >= 0", code="BAD_REQUEST")
        with self.lock:
            self._pty.close()
            self._outbox.clear()
            self._replug_at = self.clock() + seconds
        self.wake()

    @property
    def plugged(self) -> bool:
        return self._pty.is_open

    # --- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            fds = [self._wake_r]
            master = self._pty.master_fd
            if master is not None:
                fds.append(master)
            try:
                ready, _, _ = select.select(fds, [], [], self._timeout())
            except (OSError, ValueError):
                ready = []  # the pty was closed by unplug() between the check and select
            if self._wake_r in ready:
                while True:
                    try:
                        if not os.read(self._wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            try:
                self._turn(master is not None and master in ready)
            except Exception:  # the supervisor loop of the device: log and go on
                log.exception("%s: error in device loop", self.name)

    def _timeout(self) -> float:
        with self.lock:
            timeout = _TICK_SECONDS
            if self._outbox:
                timeout = min(timeout, max(0.0, self._outbox[0][0] - self.clock()))
            return timeout

    def _turn(self, readable: bool) -> None:
        with self.lock:
            now = self.clock()
            if self._replug_at is not None and now >= self._replug_at:
                self._replug_at = None
                self._pty.open()
                log.info("%s replugged at %s", self.name, self._pty.pty_path)
            # Physics first, so a reply computed in this turn reflects the present moment.
            self.on_tick(now)
            if readable:
                data = self._pty.read()
                if data:
                    self.bytes_received += len(data)
                    self.on_data(data)
            while self._outbox and self._outbox[0][0] <= now:
                _, _, data = heapq.heappop(self._outbox)
                self.bytes_sent += self._pty.write(data)
