"""Claimed idempotency keys and the first response given for each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, utcnow


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    # Keys are scoped per principal, so two users can never collide or read each other's reply.
    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="in_progress")  # or "done"
    response_status: Mapped[int | None]
    # Legacy: bodies stored in clear before migration 0018 (they expire with the key's TTL).
    response_body: Mapped[Any | None] = mapped_column(JSON)
    # The first response's JSON, encrypted with the PII key (context
    # "idempotency:{principal}:{key}"): a reply may carry personal data (an address).
    response_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
