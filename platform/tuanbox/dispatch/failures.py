"""Inbound messages that did not apply: counted under their identity, kept as dead letters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.dispatch.models import InboundFailure

# A refused message is kept for ops up to this size: it is by definition not what a locker
# should send, and the broker's own limit is far larger.
MAX_KEPT_PAYLOAD = 64 * 1024


def record_failure(
    session: Session,
    *,
    key: str,
    topic: str,
    locker_id: str | None,
    payload: bytes,
    error: str,
    now: datetime,
    dead_letter: bool = False,
) -> tuple[int, datetime | None]:
    """Count one failure of the message under ``key`` (an upsert, so bridges failing on copies
    of one message count into one row); with ``dead_letter`` it is given up on at once.

    Returns the attempts so far and when the message became a dead letter (None: not yet)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    error = error[:4000]
    stmt = insert(InboundFailure).values(
        key=key[:200],
        topic=topic[:200],
        locker_id=locker_id,
        payload=payload[:MAX_KEPT_PAYLOAD],
        error=error,
        attempts=1,
        first_failed_at=now,
        last_failed_at=now,
        dead_lettered_at=now if dead_letter else None,
    )
    update: dict[str, object] = {
        "attempts": InboundFailure.attempts + 1,
        "error": error,
        "last_failed_at": now,
    }
    if dead_letter:
        update["dead_lettered_at"] = func.coalesce(InboundFailure.dead_lettered_at, now)
    stmt = stmt.on_conflict_do_update(index_elements=[InboundFailure.key], set_=update)
    returning = stmt.returning(InboundFailure.attempts, InboundFailure.dead_lettered_at)
    attempts, dead_at = session.execute(returning).one()
    return int(attempts), dead_at
