"""Searching the audit log for ops: filters, pages by seq (newest first), CSV export rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from tuanbox.audit.chain import canonical_time
from tuanbox.audit.models import AuditEntry

CSV_COLUMNS = (
    "seq", "at", "actor_id", "actor_role", "ip", "action", "subject_type", "subject_id",
    "reason", "details", "before", "after", "request_id", "prev_hash", "hash",
)  # fmt: skip
EXPORT_BATCH = 1000
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """Every given filter must match; ``action`` ending in ``*`` matches a prefix."""

    actor: str | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [AuditEntry.seq.is_not(None)]
        if self.actor:
            where.append(AuditEntry.actor_id == self.actor)
        if self.action and self.action.endswith("*"):
            where.append(AuditEntry.action.startswith(self.action[:-1], autoescape=True))
        elif self.action:
            where.append(AuditEntry.action == self.action)
        if self.subject_type:
            where.append(AuditEntry.subject_type == self.subject_type)
        if self.subject_id:
            where.append(AuditEntry.subject_id == self.subject_id)
        if self.since is not None:
            where.append(AuditEntry.at >= as_utc(self.since))
        if self.until is not None:
            where.append(AuditEntry.at < as_utc(self.until))
        return where

    def as_dict(self) -> dict[str, Any]:
        """The filters that were given (for the export's own audit entry and page links)."""
        return {k: v for k, v in vars(self).items() if v is not None and v != ""}


def page(
    session: Session, filters: Filters, *, before_seq: int | None, limit: int
) -> tuple[list[AuditEntry], int | None]:
    """Newest first, up to ``limit`` entries below ``before_seq``; and the next cursor."""
    query = select(AuditEntry).where(*filters.conditions())
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    rows = list(session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": canonical_time(entry.at),
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "ip": entry.ip,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "reason": entry.reason,
        "details": entry.details,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(session: Session, filters: Filters) -> Iterator[str]:
    """The matching entries oldest first, as CSV text in chunks (a header line first).

    Reads plain rows, not entities, so a long export keeps nothing in the session."""
    columns = [getattr(AuditEntry, name).label(name) for name in CSV_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after = 0
    while True:
        rows = session.execute(
            select(*columns)
            .where(*filters.conditions(), AuditEntry.seq > after)
            .order_by(AuditEntry.seq)
            .limit(EXPORT_BATCH)
        ).all()
        for row in rows:
            values = row._asdict()
            values["at"] = canonical_time(values["at"])
            writer.writerow(_cell(values[column]) for column in CSV_COLUMNS)
        chunk = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if chunk:
            yield chunk
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].seq
