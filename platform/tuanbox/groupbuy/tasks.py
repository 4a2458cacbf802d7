"""Celery entry points of group-buy: the durable deadline scan that closes due groups."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="groupbuy.close_due_groups", bind=True, acks_late=True)
def close_due_groups(self: Any) -> int:
    """Close every group past its deadline (or filled); the DB holds every deadline."""
    from tuanbox.groupbuy.closing import close_due_groups as close

    settings = self.app.conf.tuanbox_settings
    return len(close(session_factory_for(settings.database_url, settings)))
