"""Admin use cases on accounts: disable (revoking every token) and re-enable; re-index phones."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tuanbox.accounts.errors import AccountErasedError, InvalidPhoneError, SelfDisableError
from tuanbox.accounts.models import RefreshToken, User
from tuanbox.accounts.phones import to_e164
from tuanbox.accounts.revocation import Revocations
from tuanbox.audit.services import Actor, record
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError
from tuanbox.settings import Settings


def _user_for_update(session: Session, user_id: str) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    return user


def disable_user(
    session: Session, revocations: Revocations, actor: Actor, user_id: str, reason: str
) -> User:
    """Disable an account in the caller's transaction: sign-in refused, refresh tokens revoked,
    access tokens refused from the next request on (audited).

    The Redis marker is written before the caller commits, so the DB never says "disabled"
    while a replica still admits the account's tokens; should the commit then fail, the only
    effect is that the still-active user signs in again.
    """
    if user_id == actor.id:
        raise SelfDisableError("you cannot disable your own account")
    user = _user_for_update(session, user_id)
    now = utcnow()
    user.active = False
    user.token_version += 1
    user.tokens_revoked_at = now
    revoked = session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    record(
        session,
        actor,
        "user.disable",
        "user",
        user.id,
        reason=reason,
        details={"refresh_tokens_revoked": int(revoked.rowcount)},  # type: ignore[attr-defined]
    )
    session.flush()
    revocations.publish(user.id, user.token_version, now, now=now)
    return user


def enable_user(session: Session, actor: Actor, user_id: str, reason: str) -> User:
    """Let a disabled account sign in again (audited); tokens from before stay refused (their
    version is older), new ones work at once."""
    user = _user_for_update(session, user_id)
    if user.erased_at is not None:
        raise AccountErasedError("this account was erased by its owner; it cannot be enabled")
    user.active = True
    record(session, actor, "user.enable", "user", user.id, reason=reason)
    session.flush()
    return user


@dataclass
class Renormalised:
    changed: int = 0
    # Accounts whose phone, once in E.164, is another account's: merging is a person's call.
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    last_id: str | None = None


def renormalise_phones(
    session: Session, settings: Settings, *, after_id: str = "", batch: int = 500
) -> Renormalised:
    """Re-store one batch of phones (by user id after `after_id`) in E.164 and re-index them.

    Phones stored before E.164 (`8613800138000`, `13800138000`) got blind indexes of their
    own, so the same person could hold several accounts; run until `last_id` is None.
    """
    cipher = PiiCipher(settings)
    out = Renormalised()
    users = session.scalars(
        select(User)
        .where(User.phone_enc.is_not(None), User.id > after_id)
        .order_by(User.id)
        .limit(batch)
    ).all()
    for user in users:
        out.last_id = user.id
        assert user.phone_enc is not None
        stored = cipher.decrypt(user.phone_enc, context="phone")
        try:
            e164 = to_e164(stored, settings.phone_default_region)
        except InvalidPhoneError:
            out.invalid.append(user.id)
            continue
        index = cipher.blind_index(e164)
        if e164 == stored and index == user.phone_hash:
            continue
        owner = session.scalars(
            select(User.id).where(User.phone_hash == index, User.id != user.id)
        ).first()
        if owner is not None:
            out.duplicates.append((user.id, owner))
            continue
        user.phone_enc = cipher.encrypt(e164, context="phone")
        user.phone_hash = index
        session.flush()
        out.changed += 1
    return out
