"""Celery entry points of segments: recompute RFM scores, run the scheduled pushes due, send
held push recipients once their rate window has room."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.settings import Settings
from tuanbox.worker.db import session_factory_for

BEAT: dict[str, dict[str, Any]] = {
    "segments.recompute_rfm": {"task": "segments.recompute_rfm", "schedule": 3600.0},
    "segments.run_scheduled_pushes": {"task": "segments.run_scheduled_pushes", "schedule": 60.0},
    "segments.retry_held_pushes": {"task": "segments.retry_held_pushes", "schedule": 60.0},
}


@shared_task(name="segments.recompute_rfm", bind=True, acks_late=True)
def recompute_rfm(self: Any) -> int:
    """Recompute every scope's RFM scores and computed tags; returns the rows written."""
    from tuanbox.segments.rfm import recompute

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with factory() as session, session.begin():
        return recompute(session).scores


def run_due(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Send each scheduled push whose local time of day has come today (station time zone).

    The push key is the schedule and the local day, so a tick run twice, or a tick after a
    beat outage, sends it once that day; before its time nothing is sent.
    """
    from tuanbox.segments import pushes
    from tuanbox.segments.models import ScheduledPush

    now = now or utcnow()
    local = now.astimezone(ZoneInfo(settings.station_timezone))
    minute = local.hour * 60 + local.minute
    sent = 0
    due = session.scalars(
        select(ScheduledPush)
        .where(ScheduledPush.minute_of_day <= minute)
        .order_by(ScheduledPush.id)
    )
    for row in list(due):
        result = pushes.send(
            session,
            settings,
            merchant_id=row.merchant_id,
            segment_id=row.segment_id,
            kind=row.kind,
            key=f"sched:{row.id}:{local.date().isoformat()}",
            coupon_template_id=row.coupon_template_id,
            message=row.message,
            now=now,
        )
        sent += len(result.sent)
    return sent


@shared_task(name="segments.run_scheduled_pushes", bind=True, acks_late=True)
def run_scheduled_pushes(self: Any) -> int:
    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with factory() as session, session.begin():
        return run_due(session, settings)


@shared_task(name="segments.retry_held_pushes", bind=True, acks_late=True)
def retry_held_pushes(self: Any) -> int:
    """Recipients a push held by the per-user limit, sent once the limit allows (each once:
    see ``pushes.retry_held``); returns how many were sent."""
    from tuanbox.segments.pushes import retry_held

    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url, settings)
    with factory() as session, session.begin():
        return retry_held(session, settings).sent
