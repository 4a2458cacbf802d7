"""Celery entry point of experiments: flush the exposure counters into the database."""

from __future__ import annotations

from typing import Any

import redis
from celery import shared_task

from tuanbox.worker.db import session_factory_for


@shared_task(name="experiments.flush_exposures", bind=True, acks_late=True)
def flush_exposures(self: Any) -> int:
    from tuanbox.experiments.exposure import flush

    settings = self.app.conf.tuanbox_settings
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return flush(
            client,
            session_factory_for(settings.database_url, settings),
            settings.experiments_prefix,
        )
    finally:
        client.close()
