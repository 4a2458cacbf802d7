"""Experiment tables: the experiment and its arms, flushed exposure counts, conversions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, utcnow


class Experiment(Base):
    """Arms are `[{"key": "a", "weight": 50, "value": "..."}, ...]`; the first is control."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("field IN ('title', 'image', 'price')", name="field_known"),
        CheckConstraint("status IN ('running', 'stopped')", name="status_known"),
        Index("ix_experiments_campaign_status", "campaign_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    campaign_id: Mapped[str] = mapped_column(ForeignKey("gb_campaigns.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(80))
    field: Mapped[str] = mapped_column(String(10))
    arms: Mapped[list[Any]] = mapped_column(JSON)
    min_sample: Mapped[int] = mapped_column(default=100)
    status: Mapped[str] = mapped_column(String(10), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]


class ExperimentExposure(Base):
    """Exposures per arm, added from the Redis counters by the flush task."""

    __tablename__ = "experiment_exposures"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    arm: Mapped[str] = mapped_column(String(20), primary_key=True)
    exposures: Mapped[int] = mapped_column(BigInt, default=0)


class ExperimentFlush(Base):
    """Flushed Redis batch ids: a flush that crashed after its commit does not count twice."""

    __tablename__ = "experiment_flushes"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    flushed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentConversion(Base):
    """A shopper's first paid order on the experiment's campaign, with their arm."""

    __tablename__ = "experiment_conversions"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    arm: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(36))
    converted_at: Mapped[datetime] = mapped_column(default=utcnow)
