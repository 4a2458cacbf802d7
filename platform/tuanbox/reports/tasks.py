"""Celery entry points of reports: refresh the daily rollups, flush counted page views."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import redis
from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="reports.refresh_rollups", bind=True, acks_late=True)
def refresh_rollups(self: Any) -> int:
    """Recompute the (merchant, day) rollups touched since the watermark; returns how many."""
    from tuanbox.reports.rollup import refresh

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with factory() as session, session.begin():
        result = refresh(
            session, ZoneInfo(settings.station_timezone), overlap_s=settings.reports_overlap_s
        )
    return result.days_recomputed


@shared_task(name="reports.flush_page_views", bind=True, acks_late=True)
def flush_page_views(self: Any) -> int:
    """Move the page views counted in Redis into the report table; returns how many."""
    from tuanbox.reports.pageviews import flush

    settings = self.app.conf.tuanbox_settings
    client = redis.Redis.from_url(settings.redis_url)
    try:
        factory = session_factory_for(settings.database_url, settings)
        return flush(client, factory, settings.reports_views_prefix)
    finally:
        client.close()


def beat_entries(refresh_s: float, flush_s: float) -> dict[str, dict[str, Any]]:
    """The beat schedule of reports, at the configured periods."""
    return {
        "reports.refresh_rollups": {"task": "reports.refresh_rollups", "schedule": refresh_s},
        "reports.flush_page_views": {"task": "reports.flush_page_views", "schedule": flush_s},
    }
