"""Anchoring the audit chain's head: its hash goes on chain through the traceability Anchor
contract (the same ``anchor(root, count)`` as event windows), and which seq went in which
transaction is recorded in ``audit_anchors``.

The head hash commits to every entry up to its seq, so one anchor covers them all; a log
rewritten after an anchor no longer reproduces the anchored hash (``tuanbox audit verify
--chain``). Nothing is sent while the head has not moved since the last anchor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from traceability.anchoring import RootAnchorer
from traceability.errors import AlreadyAnchoredError
from tuanbox.audit.models import AuditAnchor
from tuanbox.audit.verify import head_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Anchored:
    seq: int
    hash: str
    entries: int
    tx_hash: str
    block_number: int


def anchor_head(sessions: sessionmaker[Session], anchorer: RootAnchorer) -> Anchored | None:
    """Anchor the current head if it moved since the last anchor; None when there is nothing."""
    with sessions() as session:
        head = head_of(session)
        last = session.scalar(select(func.max(AuditAnchor.seq))) or 0
        if head is None or head.seq <= last:
            return None
        seq, digest = head.seq, head.hash
    root = bytes.fromhex(digest)
    try:
        tx = anchorer.anchor(root, seq - last)
    except AlreadyAnchoredError:
        # Sent by an earlier run that died before recording it: find that transaction.
        found = anchorer.find_anchor(root)
        if found is None:
            raise
        tx = found
    chain_id, contract = anchorer.chain_identity()
    row = AuditAnchor(
        seq=seq,
        hash=digest,
        entries=seq - last,
        chain_id=chain_id,
        contract=contract,
        tx_hash=tx.tx_hash,
        block_number=tx.block_number,
        block_time=tx.block_time,
        anchored_at=datetime.now(UTC),
    )
    with sessions.begin() as session:
        session.add(row)
    log.info("audit head seq %d anchored in tx %s (block %d)", seq, tx.tx_hash, tx.block_number)
    return Anchored(seq, digest, seq - last, tx.tx_hash, tx.block_number)
