"""Granting merchant staff the sight of personal data in clear (admins only, audited)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.models import Role, User
from tuanbox.audit.services import Actor, record
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.merchant_orders.models import PiiGrant


def may_reveal_pii(session: Session, user_id: str) -> bool:
    return session.scalar(select(PiiGrant.user_id).where(PiiGrant.user_id == user_id)) is not None


def set_pii_access(
    session: Session, user_id: str, *, allowed: bool, reason: str, actor: Actor
) -> bool:
    """Grant or withdraw; answers whether anything changed (a repeat changes nothing)."""
    user = session.get(User, user_id)
    if user is None or user.role != Role.MERCHANT_STAFF:
        raise NotFoundError("no such merchant staff account", field="user_id")
    if not 3 <= len(reason.strip()) <= 300:
        raise InvalidInputError("say why, in 3 to 300 characters", field="reason")
    grant = session.get(PiiGrant, user_id, with_for_update=True)
    if allowed == (grant is not None):
        return False
    if allowed:
        session.add(
            PiiGrant(
                user_id=user_id, granted_by=actor.id, reason=reason.strip(), granted_at=utcnow()
            )
        )
    else:
        session.delete(grant)
    record(
        session,
        actor,
        "console.pii_access",
        "user",
        user_id,
        reason=reason.strip(),
        details={"merchant_id": user.merchant_id},
        before={"reveal_pii": not allowed},
        after={"reveal_pii": allowed},
    )
    session.flush()
    return True
