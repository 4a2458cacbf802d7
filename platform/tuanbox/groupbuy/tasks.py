"""Celery entry points of group-buy: the durable deadline scan that closes due groups."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.db.engine import make_engine, make_session_factory


@lru_cache(maxsize=4)
def session_factory_for(database_url: str) -> sessionmaker[Session]:
    """One engine per worker process and database, made on first use (never at import)."""
    return make_session_factory(make_engine(database_url))


@shared_task(name="groupbuy.close_due_groups", bind=True, acks_late=True)
def close_due_groups(self: Any) -> int:
    """Close every group past its deadline (or filled); the DB holds every deadline."""
    from tuanbox.groupbuy.closing import close_due_groups as close

    settings = self.app.conf.tuanbox_settings
    return len(close(session_factory_for(settings.database_url)))
