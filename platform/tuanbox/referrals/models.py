"""The referrals table: one inviter per (group, invitee), the first one seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow


class Referral(Base):
    """A shopper reached a group through another shopper's share link or poster.

    The unique key makes the first touch win (later ones insert nothing); the check refuses
    self-referral whatever path writes. The invitee's seat and order are the group member
    row with the same (group, user)."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("group_id", "invitee_id"),
        CheckConstraint("inviter_id <> invitee_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("gb_groups.id", ondelete="CASCADE"))
    invitee_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    inviter_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    touched_at: Mapped[datetime] = mapped_column(default=utcnow)
