"""Celery entry points of flash sales: close ended sales, then reconcile Redis with the DB."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.db.engine import session_scope
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
