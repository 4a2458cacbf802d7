"""Recording audited actions in the same transaction as the change they describe.

``record`` adds the entry at once (the transaction sees it); its chain position is given
when that transaction commits: one UPDATE of the ``audit_chain`` row takes the next seqs
and the previous hash, and the entries are hashed and written before the COMMIT. The row
lock that UPDATE takes (PostgreSQL; SQLite serialises writers anyway) is what keeps
concurrent writers from forking the chain; taking it last, at commit, means it is held only
for the commit itself and never while a transaction waits on another lock, so audited
transactions cannot deadlock on it. A transaction that rolls back never took a seq: no gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, event, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, object_session

from tuanbox.audit.chain import GENESIS, Link, entry_hash, jsonable
from tuanbox.audit.models import HEAD_ID, IP_CHARS, AuditChainHead, AuditEntry
from tuanbox.db.base import utcnow
from tuanbox.logs import client_ip, request_id

UNSEALED = "tuanbox_audit_unsealed"  # Session.info key: entries awaiting their seq


@dataclass(frozen=True)
class Actor:
    id: str
    role: str


# Who acts when no person does (`tuanbox` commands run on the server).
CLI = Actor(id="cli", role="admin")


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Add an audit entry; it commits or rolls back together with the audited change.

    ``before`` and ``after`` are the audited fields of the subject around the change (JSON
    values); the request's id and client IP come from the request context, if any."""
    ip = client_ip.get()
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor.id[:64],
        actor_role=actor.role[:32],
        ip=ip[:IP_CHARS] if ip else None,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id)[:64],
        reason=reason[:500] if reason else reason,
        details=jsonable(details) or {},
        before=jsonable(before),
        after=jsonable(after),
        request_id=request_id.get(),
    )
    session.add(entry)
    session.info.setdefault(UNSEALED, []).append(entry)
    return entry


def link_of(entry: AuditEntry) -> Link:
    assert entry.seq is not None and entry.prev_hash is not None
    return Link(
        seq=entry.seq,
        prev_hash=entry.prev_hash,
        at=entry.at,
        actor_id=entry.actor_id,
        actor_role=entry.actor_role,
        ip=entry.ip,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        reason=entry.reason,
        details=entry.details,
        before=entry.before,
        after=entry.after,
        request_id=entry.request_id,
    )


def _take_seqs(session: Session, count: int) -> tuple[int, str]:
    """Lock the chain head and move it ``count`` seqs on; (last seq before, its hash)."""
    table = cast(Table, AuditChainHead.__table__)
    step = (
        update(table)
        .where(table.c.id == HEAD_ID)
        .values(seq=table.c.seq + count)
        .returning(table.c.seq, table.c.hash)
    )
    row = session.execute(step).one_or_none()
    if row is None:
        # A schema made without the migration (which writes the head): start the chain.
        dialect = session.get_bind().dialect.name
        maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
        if dialect in ("postgresql", "sqlite"):
            session.execute(
                maker(table)
                .values(id=HEAD_ID, seq=0, hash=GENESIS)
                .on_conflict_do_nothing(index_elements=["id"])
            )
        else:  # pragma: no cover - the platform runs on PostgreSQL or SQLite only
            session.execute(insert(table).values(id=HEAD_ID, seq=0, hash=GENESIS))
        row = session.execute(step).one()
    new_seq, prev_hash = int(row[0]), str(row[1])
    return new_seq - count, prev_hash


def seal_pending(session: Session) -> int:
    """Give this transaction's entries their seqs and hashes (run at commit); how many."""
    listed: list[AuditEntry] = session.info.pop(UNSEALED, [])
    # Entries whose savepoint rolled back (or that were expunged) are no longer the session's.
    pending = [e for e in listed if e.seq is None and object_session(e) is session]
    if not pending:
        return 0
    last, head = _take_seqs(session, len(pending))
    for offset, entry in enumerate(pending, start=1):
        entry.seq = last + offset
        entry.prev_hash = head
        entry.hash = head = entry_hash(link_of(entry))
    table = cast(Table, AuditChainHead.__table__)
    session.execute(update(table).where(table.c.id == HEAD_ID).values(hash=head))
    return len(pending)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the entries wait for the real commit
    seal_pending(session)


# Every Session: whichever process or test made it, audited work commits sealed.
if not event.contains(Session, "before_commit", _before_commit):
    event.listen(Session, "before_commit", _before_commit)
