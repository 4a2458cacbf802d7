"""Celery entry points of orders: durable scans of unpaid orders and acceptance deadlines."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="orders.expire_unpaid", bind=True, acks_late=True)
def expire_unpaid(self: Any) -> int:
    """Expire orders past their pay deadline; deadlines live in the DB, so none is lost."""
    from tuanbox.orders.services import expire_unpaid as expire

    settings = self.app.conf.tuanbox_settings
    return expire(session_factory_for(settings.database_url, settings))


@shared_task(name="orders.acceptance_deadlines", bind=True, acks_late=True)
def acceptance_deadlines(self: Any) -> int:
    """Confirm or refund paid orders whose merchant did not answer by the deadline."""
    from tuanbox.orders.acceptance import apply_deadlines

    settings = self.app.conf.tuanbox_settings
    return apply_deadlines(session_factory_for(settings.database_url, settings))
