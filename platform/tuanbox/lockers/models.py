"""Tables of pickup stations, lockers and compartments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tuanbox.db.base import Base, BigInt, TimestampMixin


class Station(TimestampMixin, Base):
    """A pickup point (a lobby, a shop front) holding one or more lockers."""

    __tablename__ = "stations"

    # Orders carry the station as a String(36), so ids stay within that.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    opening_notes: Mapped[str] = mapped_column(String(500), default="")
    # The daily delivery wave (`tuanbox.fulfilment.schedule`): IANA zone and local HH:MM
    # times; NULL takes the deployment's TUANBOX_STATION_TIMEZONE / TUANBOX_WAVE_* settings.
    timezone: Mapped[str | None] = mapped_column(String(64))
    wave_cutoff: Mapped[str | None] = mapped_column(String(5))
    wave_departure: Mapped[str | None] = mapped_column(String(5))

    lockers: Mapped[list[Locker]] = relationship(back_populates="station")


class Locker(TimestampMixin, Base):
    """One locker cabinet: its id is the MQTT locker id and its broker username."""

    __tablename__ = "lockers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(36), ForeignKey("stations.id"), index=True)
    hardware_profile: Mapped[str] = mapped_column(String(64), default="kerong-cu16")
    board_layout: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    broker_username: Mapped[str] = mapped_column(String(64), unique=True)
    # mosquitto_passwd's `$7$` PBKDF2-SHA512 string: the password itself is shown once.
    broker_password_hash: Mapped[str | None] = mapped_column(String(200))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column()
    boot_id: Mapped[str | None] = mapped_column(String(200))
    agent_version: Mapped[str | None] = mapped_column(String(64))
    last_event_seq: Mapped[int] = mapped_column(BigInt, default=0)

    station: Mapped[Station] = relationship(back_populates="lockers")
    compartments: Mapped[list[Compartment]] = relationship(
        back_populates="locker", order_by="Compartment.id"
    )


class Compartment(TimestampMixin, Base):
    """One door of a locker, addressed on the wire as ``"<board>-<lock>"``."""

    __tablename__ = "compartments"
    __table_args__ = (
        UniqueConstraint("locker_id", "board", "lock"),
        CheckConstraint("size IN ('S', 'M', 'L')", name="size"),
        CheckConstraint("zone IN ('ambient', 'chilled', 'frozen')", name="zone"),
        CheckConstraint(
            "state IN ('free', 'reserved', 'occupied', 'out_of_service')", name="state"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locker_id: Mapped[str] = mapped_column(ForeignKey("lockers.id"), index=True)
    board: Mapped[int] = mapped_column(Integer)
    lock: Mapped[int] = mapped_column(Integer)
    size: Mapped[str] = mapped_column(String(1))
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    depth_mm: Mapped[int] = mapped_column(Integer)
    zone: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="free", index=True)
    wear_count: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the locker reports something the platform did not expect (e.g. an item in a
    # compartment we think is free); ops clear it after looking, the allocator skips it.
    flagged_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_detail: Mapped[str | None] = mapped_column(String(500))

    locker: Mapped[Locker] = relationship(back_populates="compartments")

    @property
    def label(self) -> str:
        """The wire id of this compartment, e.g. ``"0-3"``."""
        return f"{self.board}-{self.lock}"
