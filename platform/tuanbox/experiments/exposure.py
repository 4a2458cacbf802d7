"""Exposures: one HINCRBY per rendered variant on the hot path, flushed in batches.

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

from tuanbox.experiments.models import Experiment, ExperimentExposure, ExperimentFlush
from tuanbox.reports.pageviews import SessionOpener

log = logging.getLogger(__name__)
# How long a page process trusts what it knows of a campaign's running experiment.
CACHE_TTL_S = 10.0
_cache: dict[str, tuple[float, tuple[str, str, list[Any]] | None]] = {}


def running_cached(
    opener: SessionOpener, campaign_id: str, now: float | None = None
) -> tuple[str, str, list[Any]] | None:
    """(experiment id, field, arms) of the campaign's running experiment, cached briefly."""
    now = time.monotonic() if now is None else now
    hit = _cache.get(campaign_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    with opener() as session:
        row = session.scalars(
            select(Experiment).where(
                Experiment.campaign_id == campaign_id, Experiment.status == "running"
            )
        ).first()
        value = None if row is None else (row.id, row.field, list(row.arms))
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[campaign_id] = (now + CACHE_TTL_S, value)
    return value


def forget(campaign_id: str) -> None:
    _cache.pop(campaign_id, None)


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
