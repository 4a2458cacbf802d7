"""Celery entry points of growth and membership: award the invite leaderboards of ended
periods (every run retries what a crashed one left), and record ended membership terms."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.db.engine import session_scope
from tuanbox.settings import Settings
from tuanbox.worker.db import session_factory_for


def award_ended(factory: sessionmaker[Session], settings: Settings) -> dict[str, dict[str, int]]:
    """The last ended week and month, for each active reward: decided and granted once."""
    from tuanbox.db.base import utcnow
    from tuanbox.growth.leaderboard import KINDS, award_period, previous_period

    now = utcnow()
    out = {}
    for kind in KINDS:
        period = previous_period(kind, now, settings.station_timezone)
        out[period.key] = award_period(factory, kind, period, now=now)
    return out


@shared_task(name="growth.award_leaderboards", bind=True, acks_late=True)
def award_leaderboards(self: Any) -> dict[str, dict[str, int]]:
    settings: Settings = self.app.conf.tuanbox_settings
    return award_ended(session_factory_for(settings.database_url, settings), settings)


@shared_task(name="membership.expire_terms", bind=True, acks_late=True)
def expire_terms(self: Any) -> int:
    from tuanbox.membership.services import expire_due

    settings: Settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with session_scope(factory) as session:
        return expire_due(session)


@shared_task(name="membership.republish_markers", bind=True, acks_late=True)
def republish_markers(self: Any) -> int:
    """Rewrite the Redis markers of open memberships (flash early access) from the DB."""
    import redis

    from tuanbox.membership.markers import republish

    settings: Settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2.0)
    try:
        with session_scope(factory) as session:
            return republish(session, client)
    finally:
        client.close()
