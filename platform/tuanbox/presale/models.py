"""Receipts of pre-sale batches at station hubs: one per campaign and station."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, utcnow


class PresaleReceipt(Base):
    """A campaign's purchase-order batch arrived at a station hub; its orders were confirmed."""

    __tablename__ = "presale_receipts"
    __table_args__ = (UniqueConstraint("campaign_id", "station_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("gb_campaigns.id", ondelete="RESTRICT"), index=True
    )
    station_id: Mapped[str] = mapped_column(String(36), ForeignKey("stations.id"))
    # Units counted in at the hub, as the receiving staff entered them.
    qty: Mapped[int] = mapped_column(BigInt)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by: Mapped[str] = mapped_column(String(64))
    # The EPCIS receiving event in the batch's provenance.
    trace_event_id: Mapped[str] = mapped_column(ForeignKey("trace_events.id"))
