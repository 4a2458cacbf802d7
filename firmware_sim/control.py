"""Line-delimited JSON control API on a local UNIX socket, and its client.

Request: one JSON object per line, ``{"action": "open_door", "compartment": "0-1"}``.
Response: one line, ``{"ok": true, "result": ...}`` or
``{"ok": false, "code": "LOCKED", "error": "0-1 is latched"}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_sim.errors import SimError

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Any]
MAX_LINE = 64 * 1024


def handle_line(handler: Handler, line: bytes) -> dict[str, Any]:
    """Turn one request line into one response object; never raises for bad input."""
    try:
        request = json.loads(line)
    except ValueError:
        return {"ok": False, "code": "BAD_REQUEST", "error": "request is not JSON"}
    if not isinstance(request, dict):
        return {"ok": False, "code": "BAD_REQUEST", "error": "request must be a JSON object"}
    try:
        return {"ok": True, "result": handler(request)}
    except SimError as exc:
        return {"ok": False, "code": exc.code, "error": str(exc)}


class _RequestHandler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return
            if not line.strip():
                continue
            response = handle_line(self.server.control_handler, line)
            self.wfile.write(json.dumps(response).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    control_handler: Handler


class ControlServer:
    """Serves ``handler`` on the UNIX socket ``path`` from a background thread."""

    def __init__(self, path: str | os.PathLike[str], handler: Handler) -> None:
        self.path = Path(path)
        self._handler = handler
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a killed run
        self.path.parent.mkdir(parents=True, exist_ok=True)
        server = _Server(str(self.path), _RequestHandler)
        server.control_handler = self._handler
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: str | os.PathLike[str], action: str, timeout: float = 10.0, **params: Any) -> Any:
    """Send one request and return its ``result``; raise SimError with the server's code."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise SimError(
                f"cannot reach control socket {path}: {exc}", code="NOT_RUNNING"
            ) from exc
        sock.sendall(json.dumps({"action": action, **params}).encode() + b"\n")
        with sock.makefile("rb") as stream:
            line = stream.readline(MAX_LINE)
    if not line:
        raise SimError("control socket closed without answering", code="NOT_RUNNING")
    response = json.loads(line)
    if not response.get("ok"):
        raise SimError(response.get("error", "failed"), code=response.get("code", "SIM_ERROR"))
    return response.get("result")


# --- request field helpers for the devices' handle_control ----------------------------


def _field(req: dict[str, Any], key: str) -> Any:
    if key not in req:
        raise SimError(f"missing field {key!r}", code="BAD_REQUEST")
    return req[key]


def req_str(req: dict[str, Any], key: str) -> str:
    value = _field(req, key)
    if not isinstance(value, str):
        raise SimError(f"{key} must be a string", code="BAD_REQUEST")
    return value


def req_int(req: dict[str, Any], key: str) -> int:
    value = _field(req, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimError(f"{key} must be an integer", code="BAD_REQUEST")
    return value


def req_float(req: dict[str, Any], key: str) -> float:
    value = _field(req, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimError(f"{key} must be a number", code="BAD_REQUEST")
    return float(value)


def req_bool(req: dict[str, Any], key: str) -> bool:
    value = _field(req, key)
    if not isinstance(value, bool):
        raise SimError(f"{key} must be true or false", code="BAD_REQUEST")
    return value
