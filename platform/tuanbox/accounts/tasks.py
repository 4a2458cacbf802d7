"""Celery entry points of accounts: keep Redis's token revocation markers in step with the DB."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.db.engine import session_scope
from tuanbox.worker.db import session_factory_for


@shared_task(name="accounts.republish_revocations", bind=True, acks_late=True)
def republish_revocations(self: Any) -> int:
    """Rewrite the markers of recently disabled accounts (a Redis restart may have lost them)."""
    import redis

    from tuanbox.accounts.revocation import Revocations, republish
    from tuanbox.db.base import utcnow

    settings = self.app.conf.tuanbox_settings
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with session_scope(session_factory_for(settings.database_url)) as session:
            return republish(
                session,
                Revocations(client, settings.access_token_ttl_s),
                now=utcnow(),
                ttl_s=settings.access_token_ttl_s,
            )
    finally:
        client.close()
