"""Audit fixtures: a committed PostgreSQL database of its own, and the CLI pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings, get_settings


@dataclass
class Committed:
    """A database whose transactions really commit (triggers, locks, other connections)."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    settings: Settings


@pytest.fixture
def committed(fresh_database: Callable[[], str]) -> Iterator[Committed]:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=20, max_overflow=0)
    try:
        yield Committed(url, engine, make_session_factory(engine, settings), settings)
    finally:
        engine.dispose()


@pytest.fixture
def cli_env(committed: Committed, monkeypatch: pytest.MonkeyPatch) -> Iterator[Committed]:
    """`tuanbox audit …` run in-process reads TUANBOX_DATABASE_URL from this environment."""
    monkeypatch.setenv("TUANBOX_DATABASE_URL", committed.url)
    monkeypatch.setenv("TUANBOX_ENV", "development")
    get_settings.cache_clear()
    yield committed
    get_settings.cache_clear()
