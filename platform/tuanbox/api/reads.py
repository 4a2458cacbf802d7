"""FastAPI dependencies for read sessions (the replica when configured), beside `deps`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

# `with source() as session:` opens a read session when the route first needs one.
ReadSource = Callable[[], AbstractContextManager[Session]]


def get_read_session(request: Request) -> Iterator[Session]:
    """One read-only session per request: the replica's when configured, else the
    primary's. Writes through it raise ReadOnlySessionError (see tuanbox.db.replica)."""
    session: Session = request.app.state.read_session_factory()
    try:
        yield session
    finally:
        session.close()


async def get_read_source(request: Request) -> ReadSource:
    """Read sessions opened only when needed (cached pages open one on a miss only)."""
    source: ReadSource = request.app.state.read_session_factory
    return source


ReadSessionDep = Annotated[Session, Depends(get_read_session)]
ReadSourceDep = Annotated[ReadSource, Depends(get_read_source)]
