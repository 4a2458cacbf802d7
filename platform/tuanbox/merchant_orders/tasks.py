"""Celery entry point of the console's tab counts: compaction of the appended deltas."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="merchant_orders.compact_tab_counts", bind=True, acks_late=True)
def compact_tab_counts_task(self: Any) -> dict[str, Any]:
    """Fold every pending tab-count delta into the counters, a batch per transaction; stops
    at once when another compaction holds the lock (it folds them). Returns how many."""
    from tuanbox.db.engine import session_scope
    from tuanbox.merchant_orders.counters import BATCH, compact_tab_counts

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    folded, busy = 0, False
    while True:
        with session_scope(factory) as session:
            moved = compact_tab_counts(session)
        if moved is None:
            busy = True
            break
        folded += moved
        if moved < BATCH:
            break
    return {"folded": folded, "busy": busy}
