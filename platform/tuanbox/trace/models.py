"""Trace tables: append-only EPCIS events, their lots, anchoring windows and window leaves.

An event row is never updated nor deleted (a correction is a new event with an error
declaration); window membership lives in its own table so that events stay untouched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, event
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, utcnow


class TraceEvent(Base):
    """One EPCIS event as validated and stored (canonical JSON-LD)."""

    __tablename__ = "trace_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_hash: Mapped[str] = mapped_column(String(100), index=True)
    # SHA-256 of the Merkle leaf data: one row per distinct event (re-posts are idempotent).
    leaf_digest: Mapped[str] = mapped_column(String(64), unique=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    event_type: Mapped[str] = mapped_column(String(32))
    biz_step: Mapped[str | None] = mapped_column(String(200))
    event_time: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class TraceEventLot(Base):
    """Which lots (GTIN + lot code) an event is about; a transformation names several."""

    __tablename__ = "trace_event_lots"
    __table_args__ = (Index("ix_trace_event_lots_gtin_lot", "gtin", "lot_code"),)

    event_id: Mapped[str] = mapped_column(
        ForeignKey("trace_events.id", ondelete="RESTRICT"), primary_key=True
    )
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    lot_code: Mapped[str] = mapped_column(String(20), primary_key=True)


class TraceWindow(Base):
    """An anchoring window: a Merkle tree over leaves, and where its root went on chain."""

    __tablename__ = "trace_windows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    size: Mapped[int]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    chain_id: Mapped[int | None]
    contract: Mapped[str | None] = mapped_column(String(42))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_time: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    anchored_at: Mapped[datetime | None] = mapped_column(index=True)
    # A reorg that took the anchor off the chain after it was recorded (then re-anchored).
    reorg_count: Mapped[int] = mapped_column(default=0, server_default="0")
    reorged_at: Mapped[datetime | None]


class TraceWindowLeaf(Base):
    """Position of an event's leaf in a window; an event belongs to one window only."""

    __tablename__ = "trace_window_leaves"

    window_id: Mapped[str] = mapped_column(
        ForeignKey("trace_windows.id", ondelete="RESTRICT"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("trace_events.id", ondelete="RESTRICT"), unique=True
    )


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a stored trace event."""


@event.listens_for(TraceEvent, "before_update")
def _refuse_update(*_: object) -> None:
    raise AppendOnlyError("trace events are append-only: record a correcting event instead")


@event.listens_for(TraceEvent, "before_delete")
def _refuse_delete(*_: object) -> None:
    raise AppendOnlyError("trace events are append-only: record a correcting event instead")
