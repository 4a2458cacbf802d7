"""Tables of the cold-chain scan: evaluator state per compartment, episodes, quality holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, utcnow

EPISODE_STATUSES = ("open", "cleared")


def aware(value: datetime) -> datetime:
    """A DB time as aware UTC: SQLite hands back naive datetimes (stored as UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


HOLD_STATUSES = ("held", "released", "rejected")


class ColdChainState(Base):
    """The evaluator's memory of one compartment (telemetry.rules.CompartmentState as JSON)."""

    __tablename__ = "coldchain_states"

    locker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    compartment: Mapped[str] = mapped_column(String(8), primary_key=True)
    zone: Mapped[str] = mapped_column(String(16))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Episode(Base):
    """One excursion from raise to recovery, with the readings that prove it."""

    __tablename__ = "coldchain_episodes"
    __table_args__ = (CheckConstraint("status IN ('open', 'cleared')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locker_id: Mapped[str] = mapped_column(String(64), index=True)
    compartment: Mapped[str] = mapped_column(String(8))
    zone: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(8), default="open")
    started_at: Mapped[datetime] = mapped_column()
    raised_at: Mapped[datetime] = mapped_column()
    cleared_at: Mapped[datetime | None] = mapped_column()
    peak_c: Mapped[float | None] = mapped_column(Float)
    # [[t_ns, celsius], …]: the series attached to the alert (episode plus the time before).
    evidence: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    order_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), index=True
    )
    # What the provenance sink recorded for this episode (event ids/hashes), for the report.
    provenance: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class QualityHold(Base):
    """An order held because its compartment had an excursion, until ops release or reject."""

    __tablename__ = "coldchain_holds"
    __table_args__ = (
        UniqueConstraint("episode_id", "order_id"),
        CheckConstraint("status IN ('held', 'released', 'rejected')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("coldchain_episodes.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(36), index=True)
    booking_id: Mapped[int | None] = mapped_column(Integer)
    previous_status: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="held")
    held_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(1000))
