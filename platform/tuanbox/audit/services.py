"""Recording audited actions in the same transaction as the change they describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tuanbox.audit.models import AuditEntry
from tuanbox.logs import request_id


@dataclass(frozen=True)
class Actor:
    id: str
    role: str


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry; it commits or rolls back together with the audited change."""
    entry = AuditEntry(
        actor_id=actor.id,
        actor_role=actor.role,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        reason=reason,
        details=details or {},
        request_id=request_id.get(),
    )
    session.add(entry)
    return entry
