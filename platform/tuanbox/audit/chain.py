"""The audit hash chain: the canonical bytes of an entry, its hash, and a walk that checks links.

Each entry's hash is ``sha256(canonical(entry))`` in lowercase hex, where ``canonical`` is
the UTF-8 of a JSON object holding ``v`` (``"tuanbox-audit-v1"``), ``seq``, ``prev_hash``
(the previous entry's hash; 64 zeros for seq 1), ``at`` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``),
``actor_id``, ``actor_role``, ``ip``, ``action``, ``subject_type``, ``subject_id``, ``reason``,
``details``, ``before``, ``after`` and ``request_id``, with keys sorted at every level, no
whitespace, non-ASCII escaped as ``\\uXXXX`` (Python's ``json.dumps(..., sort_keys=True,
separators=(",", ":"), ensure_ascii=True)``). Any edit of a hashed field, a deleted or a
moved row breaks the recomputed hash or the link to its predecessor.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

FORMAT = "tuanbox-audit-v1"
GENESIS = "0" * 64


def jsonable(value: Any) -> Any:
    """``value`` as it will read back from a JSON column: the form that is hashed and stored.

    Datetimes become ISO 8601, decimals and enums their text or value, tuples lists; NaN and
    other values JSON cannot hold are refused (a ValueError or TypeError at the call site)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_encode, allow_nan=False))


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return canonical_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} cannot go into the audit log")


def canonical_time(at: datetime) -> str:
    """UTC with microseconds; a naive value (SQLite reads them back so) is taken as UTC."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Link:
    """The hashed content of one entry."""

    seq: int
    prev_hash: str
    at: datetime
    actor_id: str
    actor_role: str
    ip: str | None
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: Any
    before: Any
    after: Any
    request_id: str | None


def canonical(link: Link) -> bytes:
    doc = {
        "v": FORMAT,
        "seq": link.seq,
        "prev_hash": link.prev_hash,
        "at": canonical_time(link.at),
        "actor_id": link.actor_id,
        "actor_role": link.actor_role,
        "ip": link.ip,
        "action": link.action,
        "subject_type": link.subject_type,
        "subject_id": link.subject_id,
        "reason": link.reason,
        "details": link.details,
        "before": link.before,
        "after": link.after,
        "request_id": link.request_id,
    }
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def entry_hash(link: Link) -> str:
    return hashlib.sha256(canonical(link)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place the chain is broken: the seq to look at and what is wrong there."""

    seq: int
    kind: str  # missing | duplicate | link | edited | head | unsealed | anchor
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.detail}"


class ChainWalk:
    """Feed entries in seq order; the first break is returned and the walk stops there."""

    def __init__(self, seq: int = 0, head: str = GENESIS) -> None:
        self.seq = seq
        self.head = head

    def feed(self, link: Link, stored_hash: str | None) -> Break | None:
        expected = self.seq + 1
        if link.seq < expected:
            return Break(link.seq, "duplicate", "this seq comes twice or out of order")
        if link.seq > expected:
            return Break(
                expected,
                "missing",
                f"no entry (the next one is seq {link.seq}): rows were deleted",
            )
        if link.prev_hash != self.head:
            return Break(
                link.seq,
                "link",
                "prev_hash is not the hash of the entry before: rows were deleted or reordered",
            )
        if stored_hash != entry_hash(link):
            return Break(link.seq, "edited", "the content does not match its hash: edited")
        self.seq, self.head = link.seq, stored_hash
        return None
