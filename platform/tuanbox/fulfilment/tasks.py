"""Celery entry points of fulfilment: due delivery waves, the pickup-deadline sweep."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.fulfilment import lifecycle, waves
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.pickup import load_signing_key
from tuanbox.settings import Settings
from tuanbox.worker.db import session_factory_for


def sweep(factory: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """Remind shoppers near their deadline; send overdue parcels back (one transaction each)."""
    ctx = lifecycle.Context(settings, load_signing_key(settings))
    now = utcnow()
    with session_scope(factory) as session:
        bind_settings(session, settings)
        reminded = lifecycle.send_reminders(session, ctx=ctx, now=now)
    with session_scope(factory) as session:
        bind_settings(session, settings)
        returned = lifecycle.return_overdue(session, ctx=ctx, now=now)
    return {"reminded": reminded, "returned": returned}


@shared_task(name="fulfilment.pickup_deadlines", bind=True, acks_late=True)
def pickup_deadlines(self: Any) -> dict[str, int]:
    settings: Settings = self.app.conf.tuanbox_settings
    return sweep(session_factory_for(settings.database_url, settings), settings)


@shared_task(name="fulfilment.allocate_waves", bind=True, acks_late=True)
def allocate_waves(self: Any) -> int:
    """Book compartments for every delivery wave whose allocation time has come."""
    settings: Settings = self.app.conf.tuanbox_settings
    return waves.run(session_factory_for(settings.database_url, settings), settings)
