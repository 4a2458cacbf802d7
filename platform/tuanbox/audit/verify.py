"""Checking the audit log: every entry against its hash and its predecessor, the chain head,
the anchored heads against the entries, and (optionally) the anchors against the chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from traceability.verify import RootLookup
from tuanbox.audit.chain import Break, ChainWalk, Link
from tuanbox.audit.models import HEAD_ID, AuditAnchor, AuditChainHead, AuditEntry

BATCH = 2000

_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.prev_hash,
    AuditEntry.hash,
    AuditEntry.at,
    AuditEntry.actor_id,
    AuditEntry.actor_role,
    AuditEntry.ip,
    AuditEntry.action,
    AuditEntry.subject_type,
    AuditEntry.subject_id,
    AuditEntry.reason,
    AuditEntry.details,
    AuditEntry.before,
    AuditEntry.after,
    AuditEntry.request_id,
)


@dataclass(frozen=True)
class Report:
    """What a verification walked and the first break it found (None: the log is intact)."""

    entries: int
    head_seq: int
    anchors: int
    anchors_on_chain: int
    problem: Break | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def head_of(session: Session) -> AuditChainHead | None:
    return session.get(AuditChainHead, HEAD_ID)


def verify_log(
    session: Session,
    *,
    lookup: RootLookup | None = None,
    chain_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> Report:
    """Walk the whole log in seq order; with ``lookup``, also ask the chain for each anchor.

    ``progress`` is called with the number of entries checked after each batch."""
    head = head_of(session)
    head_seq = head.seq if head is not None else 0
    anchors = {a.seq: a for a in session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq))}

    def report(problem: Break | None, walked: int, on_chain: int = 0) -> Report:
        return Report(walked, head_seq, len(anchors), on_chain, problem)

    if head is None:
        return report(Break(0, "head", "the audit_chain head row is missing"), 0)
    walk = ChainWalk()
    while True:
        rows = session.execute(
            select(*_COLUMNS).where(AuditEntry.seq > walk.seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        for row in rows:
            link = Link(*row[:2], *row[3:])
            problem = walk.feed(link, row.hash)
            if problem is None and link.seq in anchors and anchors[link.seq].hash != row.hash:
                problem = Break(
                    link.seq, "anchor", "differs from the head anchored at this seq: rewritten"
                )
            if problem is not None:
                return report(problem, walk.seq)
        if progress is not None and rows:
            progress(walk.seq)
        if len(rows) < batch:
            break
    problem = _check_end(session, walk, head, anchors)
    if problem is not None or lookup is None:
        return report(problem, walk.seq)
    checked = 0
    for anchor in anchors.values():
        problem = _check_on_chain(lookup, anchor, chain_id)
        if problem is not None:
            return report(problem, walk.seq, checked)
        checked += 1
    return report(None, walk.seq, checked)


def _check_end(
    session: Session, walk: ChainWalk, head: AuditChainHead, anchors: dict[int, AuditAnchor]
) -> Break | None:
    unsealed = session.scalar(select(func.min(AuditEntry.id)).where(AuditEntry.seq.is_(None)))
    if unsealed is not None:
        return Break(
            walk.seq + 1,
            "unsealed",
            f"entry id {unsealed} has no chain position: written around it",
        )
    if walk.seq < head.seq:
        return Break(
            walk.seq + 1,
            "missing",
            f"no entry, but the chain head is at seq {head.seq}: the last rows were deleted",
        )
    if walk.seq > head.seq or walk.head != head.hash:
        return Break(
            head.seq, "head", "the chain head row does not match the last entry: it was edited"
        )
    beyond = [seq for seq in anchors if seq > walk.seq]
    if beyond:
        return Break(
            min(beyond),
            "missing",
            "no entry, but this seq was anchored: the last rows were deleted",
        )
    return None


def _check_on_chain(lookup: RootLookup, anchor: AuditAnchor, chain_id: int | None) -> Break | None:
    if chain_id is not None and anchor.chain_id != chain_id:
        return Break(
            anchor.seq,
            "anchor",
            f"anchored on chain {anchor.chain_id}, but the node serves chain {chain_id}",
        )
    at = lookup.anchored_at(anchor.contract, bytes.fromhex(anchor.hash))
    if at == 0:
        return Break(
            anchor.seq,
            "anchor",
            f"its head hash is not anchored in contract {anchor.contract}: "
            "the log and its anchors were rewritten",
        )
    if at != anchor.block_time:
        return Break(
            anchor.seq,
            "anchor",
            f"anchored at block time {at}, but recorded as {anchor.block_time}",
        )
    return None
