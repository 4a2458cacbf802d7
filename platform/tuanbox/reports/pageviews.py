"""Campaign page views for the funnel: a Redis counter per request, flushed in batches.

The hot path costs one pipelined HINCRBY on the API's own Redis connection and no database
write: `{prefix}day:{YYYY-MM-DD}` is a hash of campaign id → views. The flush (a Celery
task) renames each day's hash to a batch key, so requests counting meanwhile start a new
hash, and adds the batch to `report_campaign_views` in one transaction that also records
the batch id: a flush that crashed after its commit but before deleting the batch finds the
id on its next run and only deletes it (no view counted twice, none lost).

Counting is best effort on purpose: with Redis down the page still renders, uncounted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.models import Campaign
from tuanbox.reports.days import local_day
from tuanbox.reports.models import CampaignViews, ViewBatch

log = logging.getLogger(__name__)

# Sessions closed (rolled back unless committed) when the block ends: a session factory.
SessionOpener = Callable[[], AbstractContextManager[Session]]
# A flushed batch id is kept this long (a crashed flush is retried well within it).
BATCH_KEEP = timedelta(days=7)
LOCK_TTL_S = 300


def day_key(prefix: str, day: date) -> str:
    return f"{prefix}day:{day.isoformat()}"


def view_command(prefix: str, campaign_id: str, now: datetime, tz: ZoneInfo) -> tuple[str, ...]:
    """The one Redis command a page view costs."""
    return ("HINCRBY", day_key(prefix, local_day(now, tz)), campaign_id, "1")


async def record_view(request: Any, campaign_id: str) -> None:
    """Count a view of a campaign (or flash-sale) page; never fails the page."""
    from tuanbox.api.redis_async import redis_for

    settings = request.app.state.settings
    command = view_command(
        settings.reports_views_prefix, campaign_id, utcnow(), ZoneInfo(settings.station_timezone)
    )
    try:
        async with redis_for(request) as client:
            await client.call(*command)
    except (redis.RedisError, OSError) as exc:
        log.warning("page view not counted (%s): %s", campaign_id, exc)


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _merchants(session: Session, ids: list[str]) -> dict[str, str]:
    """Campaign or flash-sale id → merchant id; ids of neither are dropped."""
    found: dict[str, str] = {}
    for table in (Campaign, FlashSale):
        rows = session.execute(select(table.id, table.merchant_id).where(table.id.in_(ids)))
        found.update({i: m for i, m in rows})
    return found


def _add(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = ins(CampaignViews).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["merchant_id", "day", "campaign_id"],
            set_={"views": CampaignViews.views + stmt.excluded.views},
        )
    )


def _apply(client: redis.Redis, opener: SessionOpener, prefix: str, key: str) -> int:
    """Add one batch hash to the table (once), then delete it; returns the views added."""
    batch_id = key[len(prefix) :]
    day = date.fromisoformat(batch_id.split(":")[1])
    counts = {_decode(k): int(v) for k, v in client.hgetall(key).items()}
    added = 0
    with opener() as session:
        if session.get(ViewBatch, batch_id) is None:
            session.add(ViewBatch(id=batch_id))
            merchants = _merchants(session, sorted(counts)) if counts else {}
            rows: list[dict[str, Any]] = [
                {"merchant_id": merchants[c], "day": day, "campaign_id": c, "views": n}
                for c, n in sorted(counts.items())
                if c in merchants and n > 0
            ]
            for n in range(0, len(rows), 500):
                _add(session, rows[n : n + 500])
            added = sum(r["views"] for r in rows)
        session.commit()
    client.delete(key)
    return added


def flush(client: redis.Redis, opener: SessionOpener, prefix: str) -> int:
    """Move every counted view into `report_campaign_views`; returns the views added.

    Runs alone (a Redis lock): a batch left by a crashed flush is applied by the next."""
    token = uuid.uuid4().hex
    lock = f"{prefix}flush-lock"
    if not client.set(lock, token, nx=True, ex=LOCK_TTL_S):
        return 0
    try:
        added = 0
        for key in sorted(_decode(k) for k in client.scan_iter(match=f"{prefix}batch:*")):
            added += _apply(client, opener, prefix, key)
        for key in sorted(_decode(k) for k in client.scan_iter(match=f"{prefix}day:*")):
            day = key[len(prefix) + len("day:") :]
            batch = f"{prefix}batch:{day}:{uuid.uuid4().hex}"
            try:
                client.rename(key, batch)
            except redis.ResponseError:  # no such key: nothing counted since the scan
                continue
            added += _apply(client, opener, prefix, batch)
        with opener() as session:
            session.execute(delete(ViewBatch).where(ViewBatch.applied_at < utcnow() - BATCH_KEEP))
            session.commit()
        return added
    finally:
        # Only our own lock: compare and delete in one step.
        client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end",
            1,
            lock,
            token,
        )
