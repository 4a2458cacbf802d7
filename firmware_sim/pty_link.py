"""A raw pseudo-terminal whose slave side is published under a stable symlink path.

The simulator keeps its own descriptor on the slave open so the master never reads EIO
while no client is attached; a client opening the link may therefore find bytes written
before it opened, as with a real USB adapter, and should flush its input on open.
"""

from __future__ import annotations

import contextlib
import os
import tty
from pathlib import Path

from firmware_sim.errors import SimError


class PtyLink:
    """Owns one pty pair and the symlink ``link`` → slave device."""

    def __init__(self, link: str | os.PathLike[str]) -> None:
        self.link = Path(link)
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.pty_path: str | None = None

    @property
    def is_open(self) -> bool:
        return self.master_fd is not None

    def open(self) -> None:
        """Create a fresh pty and point the symlink at it (atomically, via rename)."""
        if self.is_open:
            return
        # A stale symlink from a killed run is replaced; a real file or device never is.
        if self.link.exists() and not self.link.is_symlink():
            raise SimError(f"{self.link} exists and is not a symlink", code="LINK_EXISTS")
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass through untouched
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        self.pty_path = os.ttyname(slave)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self.pty_path, tmp)
        os.replace(tmp, self.link)

    def close(self, *, unlink: bool = True) -> None:
        """Close both sides; clients holding the old device then see read/write errors."""
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = None
        if unlink and self.link.is_symlink() and os.readlink(self.link) == self.pty_path:
            self.link.unlink()
        self.pty_path = None

    def read(self, size: int = 4096) -> bytes:
        """Whatever is waiting (non-blocking); ``b""`` when nothing is or the pty is closed."""
        if self.master_fd is None:
            return b""
        try:
            return os.read(self.master_fd, size)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""  # EIO: no client on the slave side right now

    def write(self, data: bytes) -> int:
        """Write without blocking; what does not fit is dropped, like a bus nobody reads."""
        if self.master_fd is None or not data:
            return 0
        try:
            return os.write(self.master_fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return 0
