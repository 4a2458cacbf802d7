"""Access tokens of a disabled account refused at once: a Redis marker per user, the DB as record.

Every access token carries its account's token version (claim ``ver``). Disabling an account
bumps ``users.token_version`` and stamps ``users.tokens_revoked_at`` (the record), and sets
the Redis key ``tuanbox:revoked:{user_id}`` to the new version for one access-token lifetime
(by then every older token has expired by itself). Each authenticated request costs one Redis
GET, on any API replica: a token of an older version is refused with 401 ``TOKEN_REVOKED``.
Versions, not instants, so no clock is compared: a token issued in the same second as the
disable is refused, one issued after a re-enable is not.

The beat task ``accounts.republish_revocations`` rewrites the markers from the DB, so a Redis
that lost them (restart without persistence, failover) is repaired within one beat period.
When Redis cannot be reached the check reads the user's row instead (``active``,
``token_version``): slower, never a free pass.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

import redis
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import Principal
from tuanbox.accounts.errors import TokenRevokedError
from tuanbox.accounts.models import User
from tuanbox.errors import DependencyUnavailableError

log = logging.getLogger(__name__)

PREFIX = "tuanbox:revoked:"
# Markers outlive the tokens they refuse by this much: API replicas' clocks disagree a little.
CLOCK_SLACK_S = 30
_REFUSE_ALL = sys.maxsize


def _seconds(at: datetime) -> int:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite drops the zone
    return int(aware.timestamp())


class Revocations:
    """The Redis side: one key per revoked user, living as long as the tokens it refuses."""

    def __init__(self, client: redis.Redis, access_token_ttl_s: int) -> None:
        self._client = client
        self._ttl_s = access_token_ttl_s

    def publish(self, user_id: str, version: int, revoked_at: datetime, *, now: datetime) -> int:
        """Refuse this user's tokens older than `version`; 0 when every token from before
        `revoked_at` has expired already (nothing to write), else 1."""
        return self.publish_many([(user_id, version, revoked_at)], now=now)

    def publish_many(self, rows: list[tuple[str, int, datetime]], *, now: datetime) -> int:
        pipe = self._client.pipeline(transaction=False)
        written = 0
        for user_id, version, revoked_at in rows:
            left = _seconds(revoked_at) + self._ttl_s + CLOCK_SLACK_S - _seconds(now)
            if left > 0:
                pipe.set(PREFIX + user_id, version, ex=left)
                written += 1
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise DependencyUnavailableError("token revocation list unavailable") from exc
        return written

    def min_version(self, user_id: str) -> int | None:
        """The oldest token version still admitted, None without a marker; Redis errors
        propagate to the caller."""
        value = self._client.get(PREFIX + user_id)
        return None if value is None else int(value)


def min_version_from_db(session: Session, user_id: str) -> int:
    """The same answer from the record: a disabled or unknown account admits no token."""
    row = session.execute(
        select(User.active, User.token_version).where(User.id == user_id)
    ).one_or_none()
    if row is None or not row.active:
        return _REFUSE_ALL
    return int(row.token_version)


def ensure_current(request: Request, principal: Principal) -> None:
    """Refuse an access token issued before its account was disabled (401 TOKEN_REVOKED)."""
    from tuanbox.ratelimit.deps import get_redis

    settings = request.app.state.settings
    revocations = Revocations(get_redis(request), settings.access_token_ttl_s)
    try:
        floor = revocations.min_version(principal.id)
    except (redis.RedisError, ValueError) as exc:
        factory = getattr(request.app.state, "session_factory", None)
        if factory is None:
            raise DependencyUnavailableError("token revocation list unavailable") from exc
        log.warning("revocation check falls back to the database: %s", exc)
        with factory() as session:
            floor = min_version_from_db(session, principal.id)
    if floor is not None and principal.token_version < floor:
        raise TokenRevokedError("this account's access was revoked; sign in again")


def republish(session: Session, revocations: Revocations, *, now: datetime, ttl_s: int) -> int:
    """Rewrite the markers of accounts revoked within one token lifetime; returns how many."""
    since = now - timedelta(seconds=ttl_s + CLOCK_SLACK_S)
    rows = session.execute(
        select(User.id, User.token_version, User.tokens_revoked_at).where(
            User.tokens_revoked_at > since
        )
    ).all()
    return revocations.publish_many(
        [(uid, version, at) for uid, version, at in rows if at is not None], now=now
    )
