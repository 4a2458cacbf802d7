"""Membership markers in Redis, for the flash-sale admission script's early window: the key
`tuanbox:member:<user>` holds the membership's end (epoch seconds) and expires then.

Redis is never the record: the database is. A marker is written after the change commits,
and the republish job rewrites every open membership's marker, so a lost write or a Redis
restart costs a member early access for one job period at most, never grants it wrongly
for longer than a refund's write takes (a refund deletes the marker after commit)."""

from __future__ import annotations

import logging
from datetime import datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import aware
from tuanbox.db.base import utcnow
from tuanbox.db.hooks import after_commit

PREFIX = "tuanbox:member:"
BATCH = 1000
log = logging.getLogger(__name__)


def publish(client: redis.Redis, user_id: str, ends_at: datetime, *, now: datetime) -> None:
    left = int((aware(ends_at) - now).total_seconds())
    if left > 0:
        client.set(PREFIX + user_id, int(aware(ends_at).timestamp()), ex=left)
    else:
        client.delete(PREFIX + user_id)


def publish_after_commit(session: Session, user_id: str, ends_at: datetime) -> None:
    """Write the marker once this transaction commits (best effort: the job repairs it)."""
    from tuanbox.db.engine import settings_of

    url = settings_of(session).redis_url

    def write() -> None:
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            publish(client, user_id, ends_at, now=utcnow())
        except redis.RedisError:
            log.warning("membership marker for %s not written; the republish job will", user_id)
        finally:
            client.close()

    after_commit(session, write)


def republish(session: Session, client: redis.Redis, *, now: datetime | None = None) -> int:
    """Every open membership's marker, rewritten from the database; returns how many."""
    from tuanbox.membership.models import Membership

    now = now or utcnow()
    count, after = 0, ""
    while True:
        rows = session.execute(
            select(Membership.user_id, Membership.ends_at)
            .where(
                Membership.ends_at > now, Membership.starts_at <= now, Membership.user_id > after
            )
            .order_by(Membership.user_id)
            .limit(BATCH)
        ).all()
        if not rows:
            return count
        pipe = client.pipeline(transaction=False)
        for user_id, ends_at in rows:
            left = int((aware(ends_at) - now).total_seconds())
            if left > 0:
                pipe.set(PREFIX + user_id, int(aware(ends_at).timestamp()), ex=left)
                count += 1
        pipe.execute()
        after = rows[-1][0]
