"""Celery entry points of flash sales: close ended sales, reconcile Redis, remind shoppers."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.db.engine import session_scope
from tuanbox.settings import Settings
from tuanbox.worker.db import session_factory_for


@shared_task(name="flashsale.reconcile", bind=True, acks_late=True)
def reconcile(self: Any) -> int:
    """Close ended sales and repair drift for running ones (DB wins); returns repairs made."""
    from tuanbox.db.base import utcnow
    from tuanbox.flashsale.counters import FlashCounters
    from tuanbox.flashsale.reconcile import close_ended_sales, reconcile_all

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    counters = FlashCounters.from_url(settings.redis_url)
    try:
        now = utcnow()
        with session_scope(factory) as session:
            closed = close_ended_sales(
                session, now=now, busy=lambda sale_id: bool(counters.queued(sale_id))
            )
        for sale_id in closed:
            counters.forget(sale_id)
        with session_scope(factory) as session:
            drifts = reconcile_all(
                session,
                counters,
                now=now,
                redis_now=counters.server_time(),
                grace_s=settings.flash_orphan_grace_s,
            )
    finally:
        counters.close()
    return len(closed) + sum(1 for d in drifts if d.reloaded or d.released_orphans)


def remind(factory: sessionmaker[Session], settings: Settings) -> int:
    """Tell every shopper whose sale starts within the configured minutes (a DB scan, so a
    beat that was down catches up; one transaction per batch); returns how many were told."""
    from tuanbox.db.base import utcnow
    from tuanbox.flashsale.reminders import BATCH, send_due
    from tuanbox.notifications.services import get_notifier

    notifier = get_notifier(settings)
    told = 0
    while True:
        with session_scope(factory) as session:
            batch = send_due(
                session, notifier, now=utcnow(), before_min=settings.flash_reminder_before_min
            )
        told += batch
        if batch < BATCH:
            return told


@shared_task(name="flashsale.send_reminders", bind=True, acks_late=True)
def send_reminders(self: Any) -> int:
    settings: Settings = self.app.conf.tuanbox_settings
    return remind(session_factory_for(settings.database_url, settings), settings)
