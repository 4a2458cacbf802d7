"""Database sessions for Celery tasks: one engine per worker process and database URL.

Made on first use (never at import) and kept for the process's life; a bounded number are
kept, and one pushed out is disposed, so no pooled connection is left for the garbage
collector to close behind a live transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from tuanbox.db.engine import make_engine, make_session_factory

if TYPE_CHECKING:
    from tuanbox.settings import Settings

MAX_ENGINES = 4

_lock = threading.Lock()
_factories: OrderedDict[str, sessionmaker[Session]] = OrderedDict()


def session_factory_for(
    database_url: str, settings: Settings | None = None
) -> sessionmaker[Session]:
    """Sessions on this URL's engine; with `settings` (the task's, from the Celery app), the
    sessions carry them, which a task whose work may run order hooks must do."""
    with _lock:
        factory = _factories.get(database_url)
        if factory is not None:
            _factories.move_to_end(database_url)
        else:
            factory = make_session_factory(make_engine(database_url))
            _factories[database_url] = factory
            while len(_factories) > MAX_ENGINES:
                _, dropped = _factories.popitem(last=False)
                dropped.kw["bind"].dispose()
    if settings is None:
        return factory
    return make_session_factory(factory.kw["bind"], settings)


def dispose_all() -> None:
    """Close every cached engine's connections (worker shutdown, test teardown)."""
    with _lock:
        while _factories:
            _, factory = _factories.popitem()
            factory.kw["bind"].dispose()
