"""Read-your-write for the console's replica reads.

Lists (orders, returns, reviews, waves, pre-sale) read the replica, which may not have
replayed a write the merchant just made: a bulk accept, then "Back to orders", would show the
orders still awaiting. So a console write that leads to such a list remembers the primary's
WAL position after its commit in a short-lived signed cookie (`remember_write`); the next
read session of that browser (`ConsoleReadDep`, `ConsoleReadSourceDep`) waits for the
replica to replay that position (at most FENCE_WAIT_S) and otherwise reads the primary
(read-only) for that request. Without the cookie, or past its lifetime, nothing is waited
for: one signed-cookie check per request, no database round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.api.reads import ReadSource
from tuanbox.console.auth import COOKIE_PATH
from tuanbox.db.replica import make_read_session_factory, on_replica, primary_lsn, wait_replayed
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.console.fence")

COOKIE = "tb_console_fence"
# How long after a write its position is carried (replication lag is normally sub-second;
# a merchant who comes back later reads the replica as usual).
FENCE_TTL_S = 120
# How long a read waits for the replica to replay the write before reading the primary.
FENCE_WAIT_S = 0.5


def _mac(settings: Settings, body: str) -> str:
    key = hashlib.sha256(b"console-fence:" + settings.secret_key.get_secret_value().encode())
    return hmac.new(key.digest(), body.encode(), hashlib.sha256).hexdigest()[:32]


def sign(settings: Settings, lsn: str, now: float | None = None) -> str:
    body = f"{lsn}.{int((time.time() if now is None else now) + FENCE_TTL_S)}"
    return f"{body}.{_mac(settings, body)}"


def verified_lsn(settings: Settings, value: str | None, now: float | None = None) -> str | None:
    """The WAL position a valid, unexpired cookie carries; None otherwise."""
    if not value or len(value) > 120:
        return None
    body, _, mac = value.rpartition(".")
    lsn, _, until = body.rpartition(".")
    if not lsn or not until.isdigit() or not hmac.compare_digest(mac, _mac(settings, body)):
        return None
    if int(until) < (time.time() if now is None else now):
        return None
    return lsn


def remember_write(response: Response, primary: Session, settings: Settings) -> None:
    """Call after the write committed: the next read in this browser includes it."""
    lsn = primary_lsn(primary)
    if lsn is None:  # SQLite: reads run on the primary anyway
        return
    response.set_cookie(
        COOKIE,
        sign(settings, lsn),
        max_age=FENCE_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )


def _primary_reads(request: Request) -> sessionmaker[Session]:
    """Read-only sessions on the primary (cached on the app like the shop's page cache)."""
    state = request.app.state
    factory: sessionmaker[Session] | None = getattr(state, "console_primary_reads", None)
    if factory is None:
        factory = make_read_session_factory(state.engine, state.settings, on_replica=False)
        state.console_primary_reads = factory
    return factory


def caught_up(request: Request, db: Session) -> bool:
    """False when this browser carries a write the replica behind ``db`` has not replayed
    within FENCE_WAIT_S (or the replica does not answer): read the primary instead."""
    if not on_replica(db):
        return True
    lsn = verified_lsn(request.app.state.settings, request.cookies.get(COOKIE))
    if lsn is None:
        return True
    try:
        if wait_replayed(db, lsn, timeout_s=FENCE_WAIT_S):
            return True
        log.info("replica behind a console write by more than %.1f s: primary read", FENCE_WAIT_S)
    except OperationalError as exc:
        log.warning("read replica unavailable after a console write: %s", exc.orig)
    return False


@contextmanager
def _fenced(request: Request, opener: ReadSource) -> Iterator[Session]:
    with opener() as db:
        if caught_up(request, db):
            yield db
            return
    with _primary_reads(request)() as db:
        yield db


def get_console_read_session(request: Request) -> Iterator[Session]:
    """The request's read session (see `tuanbox.api.reads`), fenced by the write cookie."""
    from tuanbox.api.reads import get_read_session

    override = request.app.dependency_overrides.get(get_read_session)
    if override is not None:  # tests: the rolled-back session, no replica
        yield from override()
        return
    with _fenced(request, request.app.state.read_session_factory) as db:
        yield db


async def get_console_read_source(request: Request) -> ReadSource:
    """Read sessions opened when needed (exports), fenced by the write cookie."""
    from tuanbox.api.reads import get_read_source

    override = request.app.dependency_overrides.get(get_read_source)
    opener: ReadSource = request.app.state.read_session_factory
    if override is not None:  # tests: the rolled-back session, no replica
        made = override()
        opener = await made if inspect.isawaitable(made) else made

    def source() -> AbstractContextManager[Session]:
        return _fenced(request, opener)

    return source


ConsoleReadDep = Annotated[Session, Depends(get_console_read_session)]
ConsoleReadSourceDep = Annotated[ReadSource, Depends(get_console_read_source)]
