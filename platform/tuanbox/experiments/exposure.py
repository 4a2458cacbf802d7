"""Exposures: one HINCRBY per rendered variant on the hot path, flushed in batches; and the
page processes' cache of each campaign's running experiment, kept current by a version.

The cache: `{prefix}version` is bumped (INCR) after every commit that changed an experiment
row (`install`, watching every session of the API and the worker), and a page reads it with
one GET on the API's pipelined Redis connection before trusting its cached entry, so a stop,
a start or an edit is seen by every process at its next request. With Redis down, entries
are trusted for `CACHE_TTL_S` as before.

`{prefix}live` is a hash of "experiment:arm" → count. The flush (a Celery task) renames it
to a batch key, so requests counting meanwhile start a new hash, and adds the batch to
`experiment_exposures` in the transaction that records the batch id: a flush that crashed
after its commit but before deleting the batch finds the id next time and only deletes it.
Counting is best effort: with Redis down the page still renders, uncounted.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.db.bump import BumpOnCommit, redis_client
from tuanbox.experiments.models import Experiment, ExperimentExposure, ExperimentFlush
from tuanbox.reports.pageviews import SessionOpener
from tuanbox.settings import Settings

log = logging.getLogger(__name__)
# How long a page process trusts what it knows of a campaign's running experiment when it
# cannot read the version (Redis down); with Redis up a change is seen at the next request.
CACHE_TTL_S = 10.0
VERSION = "version"  # {prefix}version: bumped after every committed change of an experiment
# campaign id -> (trusted until, version it was read at, what was read)
_cache: dict[str, tuple[float, str | None, tuple[str, str, list[Any]] | None]] = {}
Running = tuple[str, str, list[Any]]


def version_key(prefix: str) -> str:
    return prefix + VERSION


def cached(campaign_id: str, version: str | None, now: float) -> tuple[bool, Running | None]:
    """(found, value) from this process's cache: an entry read at another version than the
    current one is stale however young (``version`` None: Redis unreadable, the TTL rules)."""
    hit = _cache.get(campaign_id)
    if hit is None or hit[0] <= now or (version is not None and hit[1] != version):
        return False, None
    return True, hit[2]


def running_cached(
    opener: SessionOpener,
    campaign_id: str,
    now: float | None = None,
    version: str | None = None,
) -> Running | None:
    """(experiment id, field, arms) of the campaign's running experiment, cached in this
    process until the experiments' version moves (or briefly, when it cannot be read).

    ``version`` is read before the row: a change committed after this read bumps the version
    after its commit, so the entry stored here is stale at the next request."""
    now = time.monotonic() if now is None else now
    found, value = cached(campaign_id, version, now)
    if found:
        return value
    with opener() as session:
        row = session.scalars(
            select(Experiment).where(
                Experiment.campaign_id == campaign_id, Experiment.status == "running"
            )
        ).first()
        value = None if row is None else (row.id, row.field, list(row.arms))
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[campaign_id] = (now + CACHE_TTL_S, version, value)
    return value


def forget(campaign_id: str) -> None:
    _cache.pop(campaign_id, None)


async def current_version(request: Any) -> str | None:
    """The experiments' version: one GET on the API's pipelined Redis connection (it shares
    the socket and the loop turn's write with the page's other commands); None when Redis
    cannot answer (the cache then trusts its entries for ``CACHE_TTL_S``)."""
    from tuanbox.api.redis_async import redis_for

    prefix = request.app.state.settings.experiments_prefix
    try:
        async with redis_for(request) as client:
            value = await client.call("GET", version_key(prefix))
    except (redis.RedisError, OSError) as exc:
        log.warning("experiments version unreadable (%s): cached for %.0f s", exc, CACHE_TTL_S)
        return None
    return "0" if value is None else _decode(value)


def bump(client: redis.Redis, prefix: str) -> int:
    """Every process's cached experiments are stale from now on."""
    return int(client.incr(version_key(prefix)))


# --- invalidation: any committed change of an experiment row bumps the version ------------


def _bump(settings: Settings) -> None:
    try:
        bump(redis_client(settings.redis_url), settings.experiments_prefix)
    except redis.RedisError as exc:
        log.warning("experiments version not bumped (%s): caches refresh by their TTL", exc)


_invalidation = BumpOnCommit(
    "experiments version",
    lambda touched: any(isinstance(o, Experiment) for o in touched),
    _bump,
)


def install() -> None:
    """Watch every session of this process (API, worker) for committed experiment changes."""
    _invalidation.install()


def count_command(prefix: str, experiment_id: str, arm: str) -> tuple[str, ...]:
    return ("HINCRBY", f"{prefix}live", f"{experiment_id}:{arm}", "1")


async def record_exposure(request: Any, experiment_id: str, arm: str) -> None:
    """Count one exposure; never fails the page."""
    from tuanbox.api.redis_async import redis_for

    prefix = request.app.state.settings.experiments_prefix
    try:
        async with redis_for(request) as client:
            await client.call(*count_command(prefix, experiment_id, arm))
    except (redis.RedisError, OSError) as exc:
        log.warning("exposure not counted (%s): %s", experiment_id, exc)


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _add(session: Session, rows: list[dict[str, Any]]) -> None:
    ins = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = ins(ExperimentExposure).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["experiment_id", "arm"],
            set_={"exposures": ExperimentExposure.exposures + stmt.excluded.exposures},
        )
    )


def _apply(client: redis.Redis, opener: SessionOpener, prefix: str, key: str) -> int:
    batch_id = key[len(prefix) :]
    counts = {_decode(k): int(v) for k, v in client.hgetall(key).items()}
    added = 0
    with opener() as session:
        if session.get(ExperimentFlush, batch_id) is None:
            session.add(ExperimentFlush(batch_id=batch_id))
            ids = {k.split(":", 1)[0] for k in counts}
            known = set(session.scalars(select(Experiment.id).where(Experiment.id.in_(ids))))
            rows: list[dict[str, Any]] = []
            for field, n in sorted(counts.items()):
                experiment_id, arm = field.split(":", 1)
                if experiment_id in known and n > 0:
                    rows.append({"experiment_id": experiment_id, "arm": arm, "exposures": n})
            if rows:
                _add(session, rows)
            added = sum(int(r["exposures"]) for r in rows)
        session.commit()
    client.delete(key)
    return added


def flush(client: redis.Redis, opener: SessionOpener, prefix: str) -> int:
    """Move counted exposures into the table; returns how many. Leftover batches first."""
    added = 0
    for key in sorted(_decode(k) for k in client.scan_iter(match=f"{prefix}batch:*")):
        added += _apply(client, opener, prefix, key)
    batch = f"{prefix}batch:{uuid.uuid4().hex}"
    try:
        client.rename(f"{prefix}live", batch)
    except redis.ResponseError:  # nothing counted since the last flush
        return added
    return added + _apply(client, opener, prefix, batch)
