"""Celery entry points of flash sales: reconciliation of Redis counters with the DB."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.db.engine import session_scope
from tuanbox.groupbuy.tasks import session_factory_for


@shared_task(name="flashsale.reconcile", bind=True, acks_late=True)
def reconcile(self: Any) -> int:
    """Repair drift between Redis and the DB for running sales (DB wins); returns repairs."""
    from tuanbox.db.base import utcnow
    from tuanbox.flashsale.counters import FlashCounters
    from tuanbox.flashsale.services import reconcile_all

    settings = self.app.conf.tuanbox_settings
    counters = FlashCounters.from_url(settings.redis_url)
    try:
        with session_scope(session_factory_for(settings.database_url)) as session:
            drifts = reconcile_all(
                session,
                counters,
                now=utcnow(),
                redis_now=counters.server_time(),
                grace_s=settings.flash_orphan_grace_s,
            )
    finally:
        counters.close()
    return sum(1 for d in drifts if d.reloaded or d.released_orphans)
