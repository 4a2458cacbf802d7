"""Celery entry point of notifications: queued texts go out after their transaction commits."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="notifications.deliver_sms", bind=True, acks_late=True)
def deliver_sms(self: Any) -> int:
    """Send the due rows of `sms_outbox` (see `tuanbox.notifications.outbox`)."""
    from tuanbox.notifications.outbox import deliver_due

    settings = self.app.conf.tuanbox_settings
    return deliver_due(session_factory_for(settings.database_url, settings), settings)
