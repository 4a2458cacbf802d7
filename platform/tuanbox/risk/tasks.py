"""Celery entry points of risk control: signals are kept for the retention, then deleted."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="risk.prune", bind=True, acks_late=True)
def prune(self: Any) -> int:
    """Delete risk signals past TUANBOX_RISK_SIGNAL_RETENTION_DAYS (reviews are kept)."""
    from tuanbox.risk.signals import prune as prune_signals

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    return prune_signals(factory, retention_days=settings.risk_signal_retention_days)
