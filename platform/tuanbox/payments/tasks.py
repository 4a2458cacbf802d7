"""Celery entry points of payments: retrying owed refunds, a bounded number of times."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="payments.process_due_refunds", bind=True, acks_late=True)
def process_due_refunds(self: Any) -> dict[str, int]:
    """Attempt every pending refund that is due; backoff and attempts are kept on each row."""
    from tuanbox.payments.provider import get_provider
    from tuanbox.payments.services import process_due_refunds as process

    settings = self.app.conf.tuanbox_settings
    return process(
        session_factory_for(settings.database_url, settings),
        lambda name: get_provider(name, settings),
        base_s=settings.refund_retry_base_s,
        max_s=settings.refund_retry_max_s,
        max_attempts=settings.refund_max_attempts,
    )


@shared_task(name="idempotency.purge", bind=True, acks_late=True)
def purge_idempotency_keys(self: Any) -> int:
    from tuanbox.idempotency.services import purge_expired

    settings = self.app.conf.tuanbox_settings
    with session_factory_for(settings.database_url, settings)() as session, session.begin():
        return purge_expired(session, settings.idempotency_ttl_s)
