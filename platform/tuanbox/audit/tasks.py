"""Celery entry point of audit: the beat job that anchors the audit chain's head."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task

log = logging.getLogger(__name__)

TASK = "audit.anchor_head"


def beat_entry(interval_s: float) -> dict[str, dict[str, Any]]:
    """The beat schedule entry for this period; none when anchoring is off (0)."""
    if interval_s <= 0:
        return {}
    return {TASK: {"task": TASK, "schedule": interval_s}}


@shared_task(name=TASK, bind=True, acks_late=True)
def anchor_head_task(self: Any) -> dict[str, Any] | None:
    """Anchor the head if it moved. Runs under the trace anchoring lock: both send from the
    one signer, and two senders at once would race for its nonces."""
    from traceability.chain import ChainClient
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.audit.anchoring import anchor_head
    from tuanbox.trace.tasks import run_exclusive
    from tuanbox.worker.db import session_factory_for

    settings = self.app.conf.tuanbox_settings
    trace = get_trace_settings()
    if not trace.contract_address:
        log.warning("audit chain not anchored: TRACE_CONTRACT_ADDRESS is not set")
        return None
    client = redis.Redis.from_url(settings.redis_url)
    try:
        done = run_exclusive(
            client,
            trace.confirmation_timeout_seconds + 60,
            lambda: anchor_head(
                session_factory_for(settings.database_url, settings), ChainClient(trace)
            ),
        )
    finally:
        client.close()
    if done is None:
        return None  # the lock was busy, or the head has not moved
    return {"seq": done.seq, "tx_hash": done.tx_hash, "block_number": done.block_number}
