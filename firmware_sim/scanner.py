"""A serial QR scanner: every scanned text leaves the pty as one line (CR LF by default)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from firmware_sim.control import req_str
from firmware_sim.device import SerialDevice
from firmware_sim.errors import SimError


class ScannerSim(SerialDevice):
    name = "scanner"

    def __init__(
        self,
        link: str | os.PathLike[str],
        *,
        suffix: bytes = b"\r\n",
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(link, clock=clock)
        self.suffix = suffix
        self.scans = 0

    def on_data(self, data: bytes) -> None:
        del data  # configuration commands from the host are accepted and ignored

    def scan(self, text: str) -> None:
        """Emit ``text`` as if a code was held in front of the scanner."""
        if any(ch in text for ch in "\r\n"):
            raise SimError("a scan is one line: no CR or LF inside", code="BAD_REQUEST")
        with self.lock:
            self.scans += 1
        self.send(text.encode() + self.suffix)

    def handle_control(self, request: dict[str, Any]) -> Any:
        action = request.get("action")
        if action == "scan":
            self.scan(req_str(request, "text"))
            return None
        if action == "get_state":
            return {"link": str(self.link), "pty": self.pty_path, "scans": self.scans}
        if action == "unplug":
            seconds = request.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise SimError("seconds must be a number", code="BAD_REQUEST")
            self.unplug(float(seconds))
            return None
        raise SimError(
            f"unknown action {action!r}; one of scan, get_state, unplug", code="UNKNOWN_ACTION"
        )
