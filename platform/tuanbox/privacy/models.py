"""Progress of one PII key rotation: a cursor per table, so any worker can resume it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow


class PiiRotation(Base):
    """The sweep that moves every encrypted field to the key `key_id` (the current one).

    `cursors` holds, per table, the last primary key done and whether the table is finished;
    each batch commits its rows and its cursor together, so a sweep stopped anywhere resumes
    where it was. The row lock taken by each batch keeps two workers from doing one batch twice.
    """

    __tablename__ = "pii_rotations"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rotated: Mapped[int] = mapped_column(BigInt, default=0)
    # Changed by a concurrent write between read and update (it wrote under the current key).
    skipped: Mapped[int] = mapped_column(BigInt, default=0)
    # Ciphertext no configured key opens (or a clashing phone index): logged, left as it is.
    failed: Mapped[int] = mapped_column(BigInt, default=0)
    # Rows still under another key when the sweep finished (written meanwhile by a process
    # still on the old key, or failed): 0 means the old key may be dropped.
    remaining: Mapped[int | None] = mapped_column(BigInt)
