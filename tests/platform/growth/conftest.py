"""Growth tests get settings with their own rate-limit namespace and media dir, and a fresh
database for the tests that commit (awards, races)."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.factories import isolated_settings  # noqa: F401
from tuanbox.db.engine import make_engine, make_session_factory


@pytest.fixture
def factory(fresh_database: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database()
    engine = make_engine(url, pool_size=10, max_overflow=0)
    try:
        yield make_session_factory(engine, make_settings(database_url=url))
    finally:
        engine.dispose()
