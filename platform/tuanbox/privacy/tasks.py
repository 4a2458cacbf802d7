"""Celery entry points of data protection: the background key rotation and beat's check."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, timedelta
from typing import Any

from celery import shared_task

from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.privacy import rotation
from tuanbox.privacy.models import PiiRotation
from tuanbox.worker.db import session_factory_for

# Beat asks this often; an unfinished sweep silent for STALE_S lost its worker and is resumed.
CHECK_S = 300.0
STALE_S = 2 * CHECK_S


@shared_task(name="pii.rotate", bind=True, acks_late=True)
def rotate(
    self: Any, actor_id: str = rotation.SYSTEM.id, actor_role: str = rotation.SYSTEM.role,
    restart: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Re-encrypt under the current PII key, batch by batch, for at most
    `TUANBOX_PII_ROTATE_BUDGET_S`; then queue itself again to go on (any worker resumes)."""
    settings = self.app.conf.tuanbox_settings
    factory = session_factory_for(settings.database_url)
    actor = Actor(id=actor_id, role=actor_role)
    if restart:
        with session_scope(factory) as session:
            rotation.start(session, settings, actor, restart=True)
    deadline = time.monotonic() + settings.pii_rotate_budget_s
    last = rotation.sweep(
        lambda: session_scope(factory),
        settings,
        actor,
        until=lambda: time.monotonic() > deadline,
    )
    if not last.done:
        self.apply_async(kwargs={"actor_id": actor_id, "actor_role": actor_role})
    return asdict(last)


@shared_task(name="pii.rotation_check", bind=True)
def rotation_check(self: Any) -> str:
    """Start a sweep when the current key id has none (the key changed, or a fresh install),
    resume one whose worker died; a finished or running sweep is left alone."""
    settings = self.app.conf.tuanbox_settings
    with session_scope(session_factory_for(settings.database_url)) as session:
        run = session.get(PiiRotation, settings.pii_key_id)
        if run is not None and run.finished_at is not None:
            return "finished"
        if run is not None:
            seen = run.updated_at if run.updated_at.tzinfo else run.updated_at.replace(tzinfo=UTC)
            if seen > utcnow() - timedelta(seconds=STALE_S):
                return "running"
    self.app.send_task("pii.rotate")
    return "resumed" if run is not None else "started"
