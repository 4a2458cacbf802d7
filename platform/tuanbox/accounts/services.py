"""Account use cases: phone OTP sign-in, staff passwords, creating users, addresses."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.accounts.errors import (
    InvalidCredentialsError,
    OtpInvalidError,
    OtpLockedError,
)
from tuanbox.accounts.models import MERCHANT_ROLES, Address, OtpCode, Role, User
from tuanbox.accounts.phones import to_e164
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


def _code_hash(settings: Settings, phone_hash: str, code: str) -> str:
    key = derive_key(settings.secret_key.get_secret_value(), "otp")
    return hmac.new(key, f"{phone_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def request_otp(session: Session, settings: Settings, phone: str, *, sms: SmsSender) -> OtpCode:
    """Issue a 6-digit code for this phone (older unused codes die) and text it.

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
        code_hash=_code_hash(settings, phone_hash, code),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.otp_ttl_s),
    )
    session.add(row)
    sms.send(session, phone, phone_hash, "otp", {"code": code, "ttl_s": settings.otp_ttl_s})
    session.flush()
    return row


def verify_otp(session: Session, settings: Settings, phone: str, code: str) -> User:
    """Spend a code and return the shopper (created on first sign-in).

    A wrong code counts against the code even though the request fails, so the attempt
    counter is committed before raising; otherwise rolling back would give unlimited guesses.
    """
    phone = normalise_phone(phone, settings.phone_default_region)
    cipher = PiiCipher(settings)
    phone_hash = cipher.blind_index(phone)
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
    if not hmac.compare_digest(row.code_hash, _code_hash(settings, phone_hash, code.strip())):
        row.attempts += 1
        session.commit()
        raise OtpInvalidError("wrong code", attempts_left=settings.otp_max_attempts - row.attempts)
    row.consumed_at = now
    user = session.scalars(select(User).where(User.phone_hash == phone_hash)).one_or_none()
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
) -> User:
    """Create a merchant staff, courier, ops or admin account (audited)."""
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
        role=role,
        login=login,
        password_hash=hash_password(password),
        merchant_id=merchant_id,
        display_name=display_name,
    )
    try:
        with session.begin_nested():  # a concurrent twin may pass the check above
            session.add(user)
    except IntegrityError as exc:
        raise ConflictError("login already taken", field="login") from exc
    record(session, actor, "user.create", "user", user.id, details={"role": role, "login": login})
    return user


def phone_of(settings: Settings, user: User) -> str | None:
    return PiiCipher(settings).decrypt(user.phone_enc, context="phone") if user.phone_enc else None


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
    """Re-encrypt phones and addresses still under an older key id; returns how many rows.

    Run after changing TUANBOX_PII_KEY_ID (with the old key kept in TUANBOX_PII_KEYS); once it
    reports 0, the old key may be dropped from the settings.
    """
    cipher = PiiCipher(settings)
    current = f"{cipher.key_id}:"
    changed = 0
    users = session.scalars(
        select(User)
        .where(User.phone_enc.is_not(None), User.phone_enc.not_like(current + "%"))
        .limit(batch)
    ).all()
    for user in users:
        assert user.phone_enc is not None
        user.phone_enc = cipher.encrypt(
            cipher.decrypt(user.phone_enc, context="phone"), context="phone"
        )
        changed += 1
    addresses = session.scalars(
        select(Address).where(Address.address_enc.not_like(current + "%")).limit(batch)
    ).all()
    for row in addresses:
        row.address_enc = cipher.encrypt(
            read_address(settings, row), context=f"address:{row.user_id}"
        )
        changed += 1
    return changed
