"""The append-only audit log, the head of its hash chain and the heads anchored on chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow

HASH_CHARS = 64  # SHA-256 in hex
IP_CHARS = 64  # an IPv6 address with a zone, or a test client's name
HEAD_ID = 1


class AuditEntry(Base):
    """One audited action. ``seq``, ``prev_hash`` and ``hash`` are set when the recording
    transaction commits (see ``tuanbox.audit.services``); a committed row always has them."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_actor_id", "actor_id"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_at", "at"),
        CheckConstraint(
            "(seq IS NULL AND prev_hash IS NULL AND hash IS NULL) OR "
            "(seq >= 1 AND prev_hash IS NOT NULL AND hash IS NOT NULL)",
            name="sealed_together",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInt, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(HASH_CHARS))
    hash: Mapped[str | None] = mapped_column(String(HASH_CHARS))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(IP_CHARS))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # `before` and `after` are SQL keywords (trigger timing) in SQLite: the columns say more.
    before: Mapped[Any | None] = mapped_column("before_state", JSON)
    after: Mapped[Any | None] = mapped_column("after_state", JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The one row every append locks: the last seq and its hash."""

    __tablename__ = "audit_chain"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInt)
    hash: Mapped[str] = mapped_column(String(HASH_CHARS))


class AuditAnchor(Base):
    """A chain head (seq, hash) stored on chain through the traceability Anchor contract."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInt, unique=True)
    hash: Mapped[str] = mapped_column(String(HASH_CHARS))
    entries: Mapped[int] = mapped_column(BigInt)  # appended since the previous anchor
    chain_id: Mapped[int] = mapped_column(BigInt)
    contract: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInt)
    block_time: Mapped[int] = mapped_column(BigInt)
    anchored_at: Mapped[datetime] = mapped_column(default=utcnow)
