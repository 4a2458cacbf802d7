"""Account use cases: phone OTP sign-in, staff passwords, creating users, addresses."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.accounts.errors import (
    ErasureCodeInvalidError,
    InvalidCredentialsError,
    OtpInvalidError,
    OtpLockedError,
)
from tuanbox.accounts.models import MERCHANT_ROLES, Address, OtpCode, Role, User, new_id
from tuanbox.accounts.phones import to_e164
from tuanbox.accounts.schemas import UserOut
from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Merchant
from tuanbox.crypto import PiiCipher, derive_key
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError, InvalidInputError
from tuanbox.notifications.services import SmsSender
from tuanbox.settings import Settings

_hasher = PasswordHasher()
LOGIN_MAX = 100  # users.login
# Verified against when the login is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("tuanbox-no-such-user")


def normalise_phone(phone: str, default_region: str) -> str:
    """The phone in E.164 (`+8613800138000`), read in `default_region` without a country code;
    the one form that is encrypted, indexed and texted."""
    return to_e164(phone, default_region)


# What a texted code is for. The purpose is bound into the code's hash, so a sign-in code
# never matches at erasure and an erasure code never signs anyone in.
OtpPurpose = Literal["signin", "erasure"]
# Each purpose has its own SMS template (TUANBOX_SMS_TEMPLATES), so an erasure code never
# reads like a sign-in code (wording: tuanbox.notifications.wording).
OTP_SMS_TEMPLATES: dict[OtpPurpose, str] = {"signin": "otp", "erasure": "erasure_code"}


def _code_hash(settings: Settings, phone_hash: str, code: str, purpose: OtpPurpose) -> str:
    key = derive_key(settings.secret_key.get_secret_value(), "otp")
    # Sign-in codes keep the message they always had (codes in flight stay valid).
    message = f"{phone_hash}:{code}" if purpose == "signin" else f"{purpose}:{phone_hash}:{code}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def request_otp(
    session: Session,
    settings: Settings,
    phone: str,
    *,
    sms: SmsSender,
    purpose: OtpPurpose = "signin",
) -> OtpCode:
    """Issue a 6-digit code for this phone and purpose (older unused codes die) and text it.

    `sms` comes from the composition root (`get_sms_sender(settings)`); the code goes to it
    and nowhere else: our tables keep only its hash.
    """
    phone = normalise_phone(phone, settings.phone_default_region)
    phone_hash = PiiCipher(settings).blind_index(phone)
    now = utcnow()
    session.execute(
        update(OtpCode)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    code = f"{secrets.randbelow(10**6):06d}"
    row = OtpCode(
        phone_hash=phone_hash,
        code_hash=_code_hash(settings, phone_hash, code, purpose),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.otp_ttl_s),
    )
    session.add(row)
    params = {"code": code, "ttl_s": settings.otp_ttl_s}
    sms.send(session, phone, phone_hash, OTP_SMS_TEMPLATES[purpose], params)
    session.flush()
    return row


def verify_otp(session: Session, settings: Settings, phone: str, code: str) -> User:
    """Spend a sign-in code and return the shopper (created on first sign-in)."""
    phone = normalise_phone(phone, settings.phone_default_region)
    cipher = PiiCipher(settings)
    phone_hash = cipher.blind_index(phone)
    _spend_code(session, settings, phone_hash, code, "signin")
    user = user_by_phone(session, cipher, phone)
    if user is None:
        user = User(
            role=Role.SHOPPER,
            phone_hash=phone_hash,
            phone_enc=cipher.encrypt(phone, context="phone"),
        )
        session.add(user)
        session.flush()
    if not user.active:
        raise InvalidCredentialsError("account disabled")
    return user


def verify_erasure_code(session: Session, settings: Settings, user: User, code: str) -> None:
    """Spend the erasure code texted to this user's phone (the proof that whoever erases the
    account holds the phone, not only a token). Wrong, expired, spent or sign-in codes:
    `ErasureCodeInvalidError`; too many wrong ones: `OtpLockedError`."""
    try:
        _spend_code(session, settings, user.phone_hash or "", code, "erasure")
    except OtpInvalidError as exc:
        raise ErasureCodeInvalidError(exc.detail, **exc.extra) from None


def _spend_code(
    session: Session, settings: Settings, phone_hash: str, code: str, purpose: OtpPurpose
) -> None:
    """Mark the phone's live code spent if `code` is it, for `purpose`.

    A wrong code counts against the code even though the request fails, so the attempt
    counter is committed before raising; otherwise rolling back would give unlimited guesses.
    """
    now = utcnow()
    row = session.scalars(
        select(OtpCode)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.consumed_at.is_(None))
        .order_by(OtpCode.created_at.desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if row is None or row.expires_at <= now:
        raise OtpInvalidError("no valid code for this phone; request a new one")
    if row.attempts >= settings.otp_max_attempts:
        retry = max(1, int((row.expires_at - now).total_seconds()))
        raise OtpLockedError("too many wrong codes; request a new one", retry_after=retry)
    expected = _code_hash(settings, phone_hash, code.strip(), purpose)
    if not hmac.compare_digest(row.code_hash, expected):
        row.attempts += 1
        session.commit()
        raise OtpInvalidError("wrong code", attempts_left=settings.otp_max_attempts - row.attempts)
    row.consumed_at = now


def user_by_phone(session: Session, cipher: PiiCipher, phone: str) -> User | None:
    """The account with this (E.164) phone: its index under any configured key matches, so a
    row the key rotation has not re-indexed yet is still found (never a second account)."""
    indexes = cipher.blind_indexes(phone)
    return session.scalars(select(User).where(User.phone_hash.in_(indexes)).limit(1)).first()


def check_password(session: Session, login: str, password: str) -> User | None:
    """The active user with this login and password, else None; one argon2 verification on
    every path (a dummy hash for unknown logins), so timing does not tell them apart."""
    user = None
    if "\x00" not in login and len(login) <= LOGIN_MAX:  # never a row; PostgreSQL refuses NUL
        user = session.scalars(select(User).where(User.login == login)).one_or_none()
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher.hash(password)
    return user


def verify_password(session: Session, login: str, password: str) -> User:
    """check_password without the lockout (sign-in goes through accounts.signin instead)."""
    user = check_password(session, login, password)
    if user is None:
        raise InvalidCredentialsError("wrong login or password")
    return user


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_staff(
    session: Session,
    actor: Actor,
    *,
    role: Role,
    login: str,
    password: str,
    merchant_id: str | None = None,
    display_name: str | None = None,
    settings: Settings | None = None,
) -> User:
    """Create a merchant staff, courier, ops or admin account (audited); a display name is
    stored encrypted, so it needs `settings`."""
    if display_name and settings is None:
        raise ValueError("a display name is stored encrypted: pass the settings")
    if role == Role.SHOPPER:
        raise InvalidInputError("shoppers sign up by phone, not by password")
    if (role in MERCHANT_ROLES) != (merchant_id is not None):
        raise InvalidInputError(
            "merchant staff and couriers need a merchant_id; other roles must not have one",
            field="merchant_id",
        )
    if merchant_id is not None and session.get(Merchant, merchant_id) is None:
        raise InvalidInputError("no such merchant", field="merchant_id")
    if session.scalars(select(User.id).where(User.login == login)).first() is not None:
        raise ConflictError("login already taken", field="login")
    user = User(
        id=new_id(),
        role=role,
        login=login,
        password_hash=hash_password(password),
        merchant_id=merchant_id,
    )
    if display_name:
        assert settings is not None  # checked above
        set_display_name(settings, user, display_name)
    try:
        with session.begin_nested():  # a concurrent twin may pass the check above
            session.add(user)
    except IntegrityError as exc:
        raise ConflictError("login already taken", field="login") from exc
    record(session, actor, "user.create", "user", user.id, details={"role": role, "login": login})
    return user


def phone_of(settings: Settings, user: User) -> str | None:
    return PiiCipher(settings).decrypt(user.phone_enc, context="phone") if user.phone_enc else None


def _name_context(user: User) -> str:
    return f"display_name:{user.id}"


def display_name_of(settings: Settings, user: User) -> str | None:
    """The user's name, decrypted (a legacy plaintext one from before 0018 as it is)."""
    if user.display_name_enc:
        return PiiCipher(settings).decrypt(user.display_name_enc, context=_name_context(user))
    return user.display_name


def set_display_name(settings: Settings, user: User, name: str | None) -> None:
    """Store the name encrypted (bound to the account); None or "" removes it."""
    if user.id is None:
        user.id = new_id()
    user.display_name = None
    user.display_name_enc = (
        PiiCipher(settings).encrypt(name, context=_name_context(user)) if name else None
    )


def user_out(settings: Settings, user: User) -> UserOut:
    """The API view of an account, its name decrypted."""
    return UserOut(
        id=user.id,
        role=user.role,
        merchant_id=user.merchant_id,
        display_name=display_name_of(settings, user),
        active=user.active,
    )


def add_address(
    session: Session, settings: Settings, user_id: str, text: str, label: str = "home"
) -> Address:
    row = Address(
        user_id=user_id,
        label=label,
        address_enc=PiiCipher(settings).encrypt(text, context=f"address:{user_id}"),
    )
    session.add(row)
    session.flush()
    return row


def read_address(settings: Settings, row: Address) -> str:
    return PiiCipher(settings).decrypt(row.address_enc, context=f"address:{row.user_id}")


def rotate_pii(session: Session, settings: Settings, *, batch: int = 500) -> int:
    """Re-encrypt (and re-index) one batch of every table still under an older key id;
    returns how many rows changed. Loop until 0; `tuanbox pii rotate` is the resumable,
    audited sweep (tuanbox.privacy.rotation) that also runs in the background.
    """
    from tuanbox.privacy.rotation import rotate_once  # privacy builds on accounts' models

    return rotate_once(session, settings, batch=batch)
