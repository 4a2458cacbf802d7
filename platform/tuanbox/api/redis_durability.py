"""Start-up guard: in production, stream writes need a Redis that fsyncs every write.

With `TUANBOX_FLASH_ORDER_WRITES=stream` or `TUANBOX_GROUP_JOIN_WRITES=stream` the API
answers a winner (201) or a join (202) once Redis has queued it, before any database commit:
until its consumer's batch commits, Redis is the only record. That answer is kept only as well
as Redis keeps its writes, so `tuanbox api` refuses to start in production unless Redis reports
`appendonly yes` and `appendfsync always` (every write on disk before Redis answers it).
A Redis that refuses `CONFIG GET` (renamed or denied, as managed services do) cannot be
checked: the API then starts only with `TUANBOX_STREAM_REDIS_DURABILITY_ASSUMED=true`, the
operator's word that it is so configured.
"""

from __future__ import annotations

import logging

import redis

from tuanbox.errors import TuanboxError
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.api")

OVERRIDE = "TUANBOX_STREAM_REDIS_DURABILITY_ASSUMED"


class RedisNotDurableError(TuanboxError):
    """Production with stream writes, and Redis does not (or cannot be shown to) keep every
    acknowledged write across a crash."""

    code = "REDIS_NOT_DURABLE"


def stream_writes(settings: Settings) -> list[str]:
    """The settings that put writes on a Redis Stream ahead of the database, by env name."""
    chosen = []
    if settings.flash_order_writes == "stream":
        chosen.append("TUANBOX_FLASH_ORDER_WRITES=stream")
    if settings.group_join_writes == "stream":
        chosen.append("TUANBOX_GROUP_JOIN_WRITES=stream")
    return chosen


def require_durable_redis(settings: Settings) -> None:
    """Raise RedisNotDurableError unless this process may serve with this Redis.

    Checked only in production with stream writes; elsewhere (a development Redis keeps
    nothing on disk) nothing is asked of Redis."""
    chosen = stream_writes(settings)
    if settings.env != "production" or not chosen:
        return
    why = " and ".join(chosen)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        appendfsync = client.config_get("appendfsync").get("appendfsync")
    except redis.ResponseError as exc:  # CONFIG renamed (unknown command) or denied by ACL
        if settings.stream_redis_durability_assumed:
            log.warning(
                "Redis refused CONFIG GET (%s): its durability is not checked; %s=true says "
                "it runs appendonly yes and appendfsync always (%s)",
                exc,
                OVERRIDE,
                why,
            )
            return
        raise RedisNotDurableError(
            f"{why} answers shoppers before the database has their writes, so Redis must run "
            f"`appendonly yes` and `appendfsync always`; this Redis refused CONFIG GET ({exc}), "
            f"so that cannot be checked. Configure Redis so, then set {OVERRIDE}=true to start "
            "without the check, or use request writes."
        ) from exc
    except redis.RedisError as exc:
        raise RedisNotDurableError(
            f"{why}: could not ask Redis at start-up whether it keeps every write ({exc})"
        ) from exc
    finally:
        client.close()
    if appendonly != "yes" or appendfsync != "always":
        raise RedisNotDurableError(
            f"{why} answers shoppers before the database has their writes, so Redis must run "
            f"`appendonly yes` and `appendfsync always`; this one reports appendonly "
            f"{appendonly!r}, appendfsync {appendfsync!r}: a crash would lose acknowledged "
            "orders. Reconfigure Redis (redis-server --appendonly yes --appendfsync always) "
            "or use request writes."
        )
