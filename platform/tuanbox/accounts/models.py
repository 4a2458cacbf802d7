"""Users, one-time codes, refresh tokens and (encrypted) addresses."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, TimestampMixin, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class Role(StrEnum):
    SHOPPER = "shopper"
    MERCHANT_STAFF = "merchant_staff"
    # Delivers and retrieves parcels for one merchant: sees only that merchant's run sheet lines.
    COURIER = "courier"
    OPS = "ops"
    ADMIN = "admin"


# Roles that belong to one merchant (users.merchant_id set) and see only its data.
MERCHANT_ROLES = frozenset({Role.MERCHANT_STAFF, Role.COURIER})


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('shopper', 'merchant_staff', 'courier', 'ops', 'admin')", name="role_known"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    role: Mapped[str] = mapped_column(String(20), default=Role.SHOPPER)
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    # Legacy plaintext name (rows from before migration 0018): read while present, never
    # written by the platform; `tuanbox pii rotate` moves it into display_name_enc.
    display_name: Mapped[str | None] = mapped_column(String(100))
    # A name is personal data: stored only encrypted, context "display_name:{id}".
    display_name_enc: Mapped[str | None] = mapped_column(Text)
    # Phone numbers are stored only encrypted; phone_hash is the keyed blind index for lookup.
    phone_enc: Mapped[str | None] = mapped_column(String(200))
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Staff sign in with a login name and password (argon2id hash).
    login: Mapped[str | None] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # Access tokens carry the version they were issued under; disabling bumps it, and tokens
    # of an older version are refused (Redis holds it for one token lifetime: a cheap check).
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    tokens_revoked_at: Mapped[datetime | None] = mapped_column(index=True)
    # Set when the shopper erased the account: personal fields are gone, the row stays as the
    # owner of its orders (the books), and it never signs in again (tuanbox.privacy.erasure).
    erased_at: Mapped[datetime | None]


class OtpCode(Base):
    __tablename__ = "otp_codes"
    __table_args__ = (Index("ix_otp_codes_phone_hash_created", "phone_hash", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    phone_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    consumed_at: Mapped[datetime | None]


class RefreshToken(Base):
    """One issued refresh token; rotation links each to the next, reuse revokes the family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Address(TimestampMixin, Base):
    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(50), default="home")
    # AES-GCM ciphertext in base64 (4/3 of the UTF-8 bytes): unbounded here, the schema bounds
    # the plaintext (tuanbox.bounds.MAX_ADDRESS_CHARS).
    address_enc: Mapped[str] = mapped_column(Text)
