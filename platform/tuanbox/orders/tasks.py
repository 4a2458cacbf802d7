"""Celery entry points of orders: the durable scan that expires unpaid orders."""

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


@shared_task(name="orders.expire_unpaid", bind=True, acks_late=True)
def expire_unpaid(self: Any) -> int:
    """Expire orders past their pay deadline; deadlines live in the DB, so none is lost."""
    from tuanbox.orders.services import expire_unpaid as expire

    settings = self.app.conf.tuanbox_settings
    return expire(session_factory_for(settings.database_url))
