"""A real uvicorn server in a thread, on a free port, for tests that go through HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.settings import Settings


@contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """Serve `create_app(settings)` until the block ends; yields the base URL."""
    from tuanbox.db.engine import make_engine

    engine = make_engine(settings.database_url, pool_size=20, max_overflow=10)
    app = create_app(settings, engine=engine)
    try:
        with serve(app, backlog=4096, timeout_keep_alive=120) as base:
            yield base
    finally:
        engine.dispose()
