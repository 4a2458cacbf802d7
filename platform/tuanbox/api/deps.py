"""Typed FastAPI dependencies shared by every feature router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tuanbox.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the route commits its unit of work, errors roll back."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# `with source() as session:` opens a session when a route first needs one, in the thread
# that uses it. For async hot paths: SessionDep is a sync dependency, a thread hop per request.
SessionSource = Callable[[], AbstractContextManager[Session]]


async def get_session_source(request: Request) -> SessionSource:
    source: SessionSource = request.app.state.session_factory
    return source


def session_source_for(request: Request) -> SessionSource:
    """`get_session_source` without FastAPI's dependency solving (burst paths), honouring a
    test's `dependency_overrides[get_session_source]` as the dependency would."""
    override = request.app.dependency_overrides.get(get_session_source)
    source: SessionSource = (
        override() if override is not None else request.app.state.session_factory
    )
    return source


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionSourceDep = Annotated[SessionSource, Depends(get_session_source)]
