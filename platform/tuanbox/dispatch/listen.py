"""Wakes the bridge's outbox loop when a commit queues commands (PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Engine

from tuanbox.dispatch.outbox import CHANNEL

log = logging.getLogger("tuanbox.bridge")
APPLICATION_NAME = "tuanbox-bridge-listen"
# A NOTIFY reaches only sessions listening at that moment: while this connection is away,
# the bridge polls at its fast rate, and it wakes once more after every (re)connect.
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0


class OutboxListener:
    """A dedicated autocommit connection LISTENing on the outbox channel; each notification
    (and each reconnect) sets ``wake``. ``listening`` tells whether notifications can arrive
    now: when it is clear, the bridge must not rely on them."""

    def __init__(self, engine: Engine, wake: threading.Event, stop: threading.Event) -> None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._cargs = list(cargs)
        self._cparams = {**cparams, "autocommit": True, "application_name": APPLICATION_NAME}
        self.wake = wake
        self._stop = stop
        self.listening = threading.Event()
        self.connects = 0
        self.notifications = 0
        self._conn: psycopg.Connection[object] | None = None

    def run(self) -> None:
        """Listen until stop is set, reconnecting with backoff after any connection loss."""
        delay = RECONNECT_MIN_S
        while not self._stop.is_set():
            try:
                with psycopg.connect(*self._cargs, **self._cparams) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connects += 1
                    self.listening.set()
                    self.wake.set()  # commits made while we were away notified nobody
                    delay = RECONNECT_MIN_S
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.notifications += 1
                            self.wake.set()
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break
                log.warning("outbox LISTEN connection lost", extra={"error": str(exc)})
            except Exception:
                # Supervisor loop: the bridge falls back to fast polling and we try again.
                log.exception("outbox listener failed")
            finally:
                self._conn = None
                self.listening.clear()
            self._stop.wait(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (tests terminate it)."""
        conn = self._conn
        return conn.info.backend_pid if conn is not None else None
