"""Celery entry points of trace: the beat ticks that cut and anchor windows and that
check recorded anchors for reorgs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from celery import shared_task

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_KEY = "tuanbox:trace:anchoring"


def run_exclusive(client: redis.Redis, ttl_s: float, job: Callable[[], T]) -> T | None:
    """Run ``job`` unless another worker holds the anchoring lock (then skip this tick).

    One anchorer at a time keeps two ticks from paying gas for the same root; the TTL frees
    the lock if a worker dies holding it.
    """
    lock = client.lock(LOCK_KEY, timeout=ttl_s, blocking=False)
    if not lock.acquire():
        log.info("anchoring already running elsewhere; skipping this tick")
        return None
    try:
        return job()
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning("anchoring lock expired before the run ended")


@shared_task(name="trace.anchor_windows", bind=True, acks_late=True)
def anchor_windows(self: Any) -> dict[str, Any] | None:
    """Cut due windows and anchor every unanchored one; failures stay for the next tick."""
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.trace.services import run_anchoring
    from tuanbox.worker.db import session_factory_for

    settings = self.app.conf.tuanbox_settings
    trace = get_trace_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        summary = run_exclusive(
            client,
            trace.confirmation_timeout_seconds + 60,
            lambda: run_anchoring(session_factory_for(settings.database_url, settings), trace),
        )
    finally:
        client.close()
    if summary is None:
        return None
    return {"cut": summary.windows_cut, "anchored": summary.anchored, "failed": summary.failed}


@shared_task(name="trace.check_reorgs", bind=True, acks_late=True)
def check_reorgs(self: Any) -> dict[str, Any] | None:
    """Re-read recorded anchors; re-anchor windows a deep reorg removed (under the same lock
    as anchoring, so the two never send for one root at once)."""
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.trace import services
    from tuanbox.worker.db import session_factory_for

    settings = self.app.conf.tuanbox_settings
    trace = get_trace_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        summary = run_exclusive(
            client,
            trace.confirmation_timeout_seconds + 60,
            lambda: services.check_reorgs(
                session_factory_for(settings.database_url, settings), trace
            ),
        )
    finally:
        client.close()
    if summary is None:
        return None
    return {
        "checked": summary.checked,
        "reorged": summary.reorged,
        "reanchored": sorted(summary.reanchored),
        "failed": summary.failed,
    }
