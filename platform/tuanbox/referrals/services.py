"""Referral links and their recording: a signed inviter reference per group, first touch wins.

A share link or poster carries ``?by=<inviter id>.<tag>``, the tag an HMAC (keyed from
``secret_key``) over the group and the inviter, so a link names only an inviter we issued it
for, in that group: nobody can attribute joins to an arbitrary account, nor reuse one
group's reference for another. Recording keeps the first inviter a shopper came through
(the unique key), refuses self-referral (the check constraint too) and ignores touches after
the shopper already had a seat in the group.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.groupbuy.models import Member
from tuanbox.groupbuy.services import insert_for
from tuanbox.referrals.models import Referral
from tuanbox.settings import Settings

PARAM = "by"
MAX_REF = 80
_REF = re.compile(r"([A-Za-z0-9-]{1,36})\.([A-Za-z0-9_-]{22})")
_DOMAIN = b"tuanbox referral v1"


def _tag(settings: Settings, group_id: str, inviter_id: str) -> str:
    key = hmac.new(settings.secret_key.get_secret_value().encode(), _DOMAIN, hashlib.sha256)
    mac = hmac.new(key.digest(), f"{group_id}\x00{inviter_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).rstrip(b"=").decode("ascii")


def ref_for(settings: Settings, group_id: str, inviter_id: str) -> str:
    """The ``by`` value of ``inviter_id``'s links to ``group_id``."""
    return f"{inviter_id}.{_tag(settings, group_id, inviter_id)}"


def inviter_from(settings: Settings, group_id: str, ref: str | None) -> str | None:
    """The inviter a ``by`` value names for this group, or None when it is not one of ours."""
    if not ref or len(ref) > MAX_REF:
        return None
    found = _REF.fullmatch(ref)
    if found is None:
        return None
    inviter_id, tag = found.groups()
    expected = _tag(settings, group_id, inviter_id)
    return inviter_id if hmac.compare_digest(tag, expected) else None


def record(
    session: Session, *, group_id: str, invitee_id: str, inviter_id: str, now: datetime
) -> str | None:
    """Note that ``invitee_id`` reached the group through ``inviter_id``; returns the inviter
    on record (the first one), or None: self-referral, or the seat came before any touch."""
    if inviter_id == invitee_id:
        return None
    existing = inviter_of(session, group_id, invitee_id)
    if existing is not None:
        return existing
    seated = session.scalars(
        select(Member.id).where(Member.group_id == group_id, Member.user_id == invitee_id)
    ).first()
    if seated is not None:
        return None
    statement = (
        insert_for(session)(Referral)
        .values(group_id=group_id, invitee_id=invitee_id, inviter_id=inviter_id, touched_at=now)
        .on_conflict_do_nothing(index_elements=["group_id", "invitee_id"])
    )
    try:
        with session.begin_nested():
            session.execute(statement)
    except IntegrityError:  # the group or the inviter's account is gone
        return None
    _bind_platform_wide(session, group_id=group_id, invitee_id=invitee_id, inviter_id=inviter_id)
    return inviter_of(session, group_id, invitee_id)


def _bind_platform_wide(
    session: Session, *, group_id: str, invitee_id: str, inviter_id: str
) -> None:
    """The group touch also binds the shopper to the inviter platform-wide (first touch wins,
    the group's campaign as source; loops refused): `tuanbox.growth.binding`."""
    from tuanbox.groupbuy.models import Group
    from tuanbox.growth.binding import bind
    from tuanbox.growth.errors import ReferralRefusedError

    campaign_id = session.scalar(select(Group.campaign_id).where(Group.id == group_id))
    try:
        with session.begin_nested():
            bind(
                session,
                invitee_id=invitee_id,
                inviter_id=inviter_id,
                source="group",
                campaign_id=campaign_id,
            )
    except ReferralRefusedError:
        pass  # the group referral stands; the platform-wide binding is refused (loop, self)


def inviter_of(session: Session, group_id: str, invitee_id: str) -> str | None:
    """Who brought ``invitee_id`` into the group (their member row is the seat and order)."""
    return session.scalars(
        select(Referral.inviter_id).where(
            Referral.group_id == group_id, Referral.invitee_id == invitee_id
        )
    ).first()
