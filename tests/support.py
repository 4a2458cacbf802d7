"""Helpers every suite shares: polling with a deadline, and a free loopback port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail with ``what`` at the
    deadline. Tests wait this way, never with a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def watch_csp(page: Any) -> list[str]:
    """Collect what the Content-Security-Policy blocks on a Playwright page (Chromium logs each
    refusal to the console); a browser test asserts the list stays empty."""
    refused: list[str] = []

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", seen)
    return refused
