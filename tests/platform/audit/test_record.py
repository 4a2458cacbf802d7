"""record(): entries take their chain position at commit, in the caller's transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.platform.audit.conftest import Committed
from tuanbox.audit.chain import GENESIS, entry_hash
from tuanbox.audit.models import AuditChainHead, AuditEntry
from tuanbox.audit.services import Actor, link_of, record
from tuanbox.audit.verify import verify_log
from tuanbox.logs import client_ip, request_id

OPS = Actor("u-ops", "ops")


def seqs(session: Session) -> list[int | None]:
    return list(session.scalars(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)))


def test_entry_is_sealed_when_its_transaction_commits(db_session: Session) -> None:
    head = db_session.get_one(AuditChainHead, 1)
    start_seq, start_hash = head.seq, head.hash
    first = record(db_session, OPS, "sku.restock", "sku", "s-1",
                   before={"stock_on_hand": 3}, after={"stock_on_hand": 13})  # fmt: skip
    second = record(db_session, OPS, "sku.restock", "sku", "s-2", details={"add": 1})
    db_session.flush()  # visible to the transaction before it commits, without a position
    assert first.seq is None and first.hash is None
    assert db_session.scalar(sa.select(AuditEntry.action).where(AuditEntry.subject_id == "s-1"))
    db_session.commit()
    assert (first.seq, second.seq) == (start_seq + 1, start_seq + 2)
    assert first.prev_hash == start_hash and second.prev_hash == first.hash
    assert second.hash == entry_hash(link_of(second))
    db_session.refresh(head)
    assert (head.seq, head.hash) == (second.seq, second.hash)
    stored = db_session.get_one(AuditEntry, first.id)
    db_session.expire(stored)
    assert stored.before == {"stock_on_hand": 3} and stored.after == {"stock_on_hand": 13}
    assert verify_log(db_session).ok


def test_request_context_gives_ip_and_request_id(db_session: Session) -> None:
    ip, rid = client_ip.set("198.51.100.23"), request_id.set("req-42")
    try:
        entry = record(db_session, OPS, "alert.acknowledge", "ops_alert", "7")
    finally:
        client_ip.reset(ip)
        request_id.reset(rid)
    db_session.commit()
    assert (entry.ip, entry.request_id) == ("198.51.100.23", "req-42")


def test_a_rolled_back_savepoint_takes_no_seq(db_session: Session) -> None:
    start = db_session.get_one(AuditChainHead, 1).seq
    savepoint = db_session.begin_nested()
    record(db_session, OPS, "order.refund", "order", "o-1")
    db_session.flush()
    savepoint.rollback()  # the refund failed
    kept = record(db_session, OPS, "order.refund", "order", "o-2")
    db_session.commit()
    assert kept.seq == start + 1
    assert db_session.scalar(sa.select(AuditEntry.id).where(AuditEntry.subject_id == "o-1")) is None


def test_rolled_back_transactions_leave_no_gap(committed: Committed) -> None:
    with committed.sessions.begin() as s:
        record(s, OPS, "a", "t", "1")
    with committed.sessions() as s:
        record(s, OPS, "b", "t", "2")
        s.flush()
        s.rollback()
        record(s, OPS, "c", "t", "3")
        s.commit()
    with committed.sessions() as s:
        assert seqs(s) == [1, 2]
        assert list(s.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq))) == ["a", "c"]
        report = verify_log(s)
        assert report.ok and report.entries == report.head_seq == 2


def test_the_first_entry_links_to_genesis(committed: Committed) -> None:
    with committed.sessions.begin() as s:
        entry = record(s, OPS, "a", "t", "1")
    assert (entry.seq, entry.prev_hash) == (1, GENESIS)


def test_values_json_cannot_hold_are_refused_at_record(db_session: Session) -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        record(db_session, OPS, "a", "t", "1", after={"x": float("inf")})
