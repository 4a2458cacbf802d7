"""Referral binding, platform-wide: a shopper's first inviter is theirs for good (first touch
wins); self-referral and loops (A→B→A, or any longer cycle) are refused with a reason.

Bindings are written under one transaction-scoped advisory lock on PostgreSQL (SQLite has a
single writer), so two touches racing in opposite directions (A invites B while B invites A)
cannot both pass the loop check: the second sees the first's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.db.base import utcnow
from tuanbox.growth.errors import ReferralRefusedError
from tuanbox.growth.models import ReferralBinding

MAX_CHAIN = 10_000  # inviters walked up before giving up (a chain that long is refused)
_LOCK_KEY = 0x7475616E_62696E64  # "tuanbind": one lock for every binding write
SOURCES = ("poster", "link", "group")


@dataclass(frozen=True)
class Bound:
    """The inviter on record and whether this call made the binding."""

    inviter_id: str
    created: bool
    campaign_id: str | None


def _serialize(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def inviter_of(session: Session, invitee_id: str) -> str | None:
    return session.scalar(
        select(ReferralBinding.inviter_id).where(ReferralBinding.invitee_id == invitee_id)
    )


def would_loop(session: Session, *, invitee_id: str, inviter_id: str) -> bool:
    """True when `invitee_id` is already up the inviter's chain (or the chain is absurd)."""
    current: str | None = inviter_id
    for _ in range(MAX_CHAIN):
        if current is None:
            return False
        if current == invitee_id:
            return True
        current = inviter_of(session, current)
    return True


def bind(
    session: Session,
    *,
    invitee_id: str,
    inviter_id: str,
    source: str,
    campaign_id: str | None = None,
    now: datetime | None = None,
) -> Bound:
    """Bind `invitee_id` to `inviter_id`, or keep the earlier binding (first touch wins).

    Raises ReferralRefusedError with `reason` SELF, LOOP, NOT_A_SHOPPER or UNKNOWN_SOURCE."""
    if source not in SOURCES:
        raise ReferralRefusedError("unknown referral source", reason="UNKNOWN_SOURCE")
    if invitee_id == inviter_id:
        raise ReferralRefusedError("a shopper cannot invite themselves", reason="SELF")
    for user_id in (invitee_id, inviter_id):
        user = session.get(User, user_id)
        if user is None or user.role != "shopper":
            raise ReferralRefusedError(
                "only shoppers invite and are invited", reason="NOT_A_SHOPPER"
            )
    _serialize(session)
    existing = session.get(ReferralBinding, invitee_id, populate_existing=True)
    if existing is not None:
        return Bound(existing.inviter_id, False, existing.campaign_id)
    if would_loop(session, invitee_id=invitee_id, inviter_id=inviter_id):
        raise ReferralRefusedError(
            "this invite would close a loop: the invitee is already up the inviter's chain",
            reason="LOOP",
        )
    session.add(
        ReferralBinding(
            invitee_id=invitee_id,
            inviter_id=inviter_id,
            campaign_id=campaign_id,
            source=source,
            bound_at=now or utcnow(),
        )
    )
    session.flush()
    return Bound(inviter_id, True, campaign_id)


def invitees_of(session: Session, inviter_id: str, *, limit: int = 200) -> list[ReferralBinding]:
    return list(
        session.scalars(
            select(ReferralBinding)
            .where(ReferralBinding.inviter_id == inviter_id)
            .order_by(ReferralBinding.bound_at.desc(), ReferralBinding.invitee_id)
            .limit(limit)
        )
    )
