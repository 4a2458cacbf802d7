"""Serve an app on a loopback port in a background thread, for the demo, tests and benches."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

# How Debian's Chromium is started headless here: background networking off, since this
# machine's closed network refuses those connections many at a time.
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
)  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    app: FastAPI,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    start_timeout: float = 20.0,
    **options: Any,
) -> Iterator[str]:
    """Run uvicorn until the block ends; yields the base URL once the server accepts requests.

    ``options`` go to ``uvicorn.Config`` (e.g. ``backlog`` for load tests)."""
    port = port or free_port(host)
    # An ASGI wrapper around the app (a test counting requests, say) has no state.
    settings = getattr(getattr(app, "state", None), "settings", None)
    config: dict[str, Any] = {
        "log_config": None,
        "log_level": "warning",
        "timeout_graceful_shutdown": 3,
        # As `tuanbox api`: X-Forwarded-For only from TUANBOX_TRUSTED_PROXIES (not uvicorn's
        # FORWARDED_ALLOW_IPS / 127.0.0.1 default).
        "forwarded_allow_ips": list(settings.trusted_proxies) if settings is not None else [],
    }
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **{**config, **options}))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
