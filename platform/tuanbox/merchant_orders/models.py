"""Which merchant staff see shoppers' phones and names in clear in the console and exports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, utcnow


class PiiGrant(Base):
    """One staff account allowed to see personal data in clear (granted by an admin).

    Without a row, the console and its exports show phones as `138****8000` and names by
    their first character: what packing, pickup help and after-sales need.
    """

    __tablename__ = "console_pii_grants"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    granted_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
