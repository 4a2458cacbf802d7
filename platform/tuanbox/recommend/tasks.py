"""Celery entry points of recommendations: station-day counts past the popularity window go."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="recommend.prune_days", bind=True, acks_late=True)
def prune_days(self: Any) -> int:
    """Delete rec_station_days older than TUANBOX_RECOMMEND_POPULARITY_DAYS (+1 day)."""
    from tuanbox.db.base import utcnow
    from tuanbox.recommend.services import prune_days as prune

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with factory() as session:
        deleted = prune(session, utcnow(), settings.recommend_popularity_days)
        session.commit()
    return deleted
