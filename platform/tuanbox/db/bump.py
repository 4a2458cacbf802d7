"""Bump a Redis version counter after each commit that changed rows a process-wide cache
shows: how the shop's page cache and the experiments' cache learn of a change in every
process at once (each reader compares the version before trusting its entry)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from tuanbox.db.hooks import after_commit
from tuanbox.errors import TuanboxError
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.db.bump")

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    """One client per Redis URL in this process, for bumps made after commits."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2.0)
        return client


class BumpOnCommit:
    """Once installed, every session of the process that flushes rows `matters` picks out
    calls `bump(settings)` once after its commit (never after a rollback). A session without
    settings bound cannot bump: that is logged once per process, and the caches then refresh
    by their TTL."""

    def __init__(
        self,
        what: str,
        matters: Callable[[Sequence[object]], bool],
        bump: Callable[[Settings], object],
    ) -> None:
        self._what = what
        self._matters = matters
        self._bump = bump
        self._pending = f"tuanbox_bump:{what}"
        self._installed = False
        self._warned = False

    def install(self) -> None:
        with _lock:
            if self._installed:
                return
            event.listen(Session, "after_flush", self._after_flush)
            event.listen(Session, "after_soft_rollback", self._after_rollback)
            self._installed = True

    def _after_flush(self, session: Session, _context: object) -> None:
        if session.info.get(self._pending):
            return
        if not self._matters((*session.new, *session.dirty, *session.deleted)):
            return
        try:
            from tuanbox.db.engine import settings_of

            settings = settings_of(session)
        except (ImportError, TuanboxError) as exc:  # no settings bound to this session
            if not self._warned:  # once per process: the writer that forgot them is the one to fix
                self._warned = True
                log.warning("%s not bumped (%s): caches refresh by their TTL", self._what, exc)
            return
        session.info[self._pending] = True

        def run() -> None:
            session.info.pop(self._pending, None)
            self._bump(settings)

        after_commit(session, run)

    def _after_rollback(self, session: Session, _previous: object) -> None:
        session.info.pop(self._pending, None)
