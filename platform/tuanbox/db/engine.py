"""Engines and sessions, built by entry points from settings (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.errors import TuanboxError

if TYPE_CHECKING:
    from tuanbox.settings import Settings

# Where a session carries the settings of the process that made it (see `settings_of`).
SETTINGS_KEY = "tuanbox_settings"


class SettingsNotBoundError(TuanboxError):
    """Code that only sees a session (an order hook) ran in a session without settings: an
    entry point built its sessions without them. Never guessed: defaults would silently
    override the process's configuration (a six-hour command TTL instead of one minute)."""

    code = "SETTINGS_NOT_BOUND"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for PostgreSQL (psycopg 3) or the zero-setup SQLite file."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine, settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions on `engine`. Entry points pass their settings, and every session then carries
    them to code that only gets the session (order hooks, see `settings_of`)."""
    info = {SETTINGS_KEY: settings} if settings is not None else None
    return sessionmaker(bind=engine, expire_on_commit=False, info=info)


def bind_settings(session: Session, settings: Settings) -> None:
    """Let code running in this session (order hooks) use these settings."""
    session.info[SETTINGS_KEY] = settings


def settings_of(session: Session) -> Settings:
    """The settings bound to this session; SettingsNotBoundError when there are none."""
    from tuanbox.settings import Settings

    bound = session.info.get(SETTINGS_KEY)
    if not isinstance(bound, Settings):
        raise SettingsNotBoundError(
            "this session carries no settings: build its factory with "
            "make_session_factory(engine, settings) or call bind_settings(session, settings)"
        )
    return bound


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
