"""Outbox rules in one transaction: claiming, the in-flight window, ack ranks, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Ack, SyncPayload
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch import outbox
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.lockers.services import CompartmentSpec


def _locker(db_session: Session, online: bool = True) -> str:
    locker, _ = make_locker(db_session, make_station(db_session).id, [CompartmentSpec(0, 1, "S")])
    locker.online = online
    db_session.flush()
    return locker.id


def test_claim_respects_online_window_backoff_and_expiry(db_session: Session) -> None:
    now = datetime.now(UTC)
    online, offline = _locker(db_session), _locker(db_session, online=False)
    ids = [
        outbox.enqueue(db_session, online, "sync", SyncPayload(), now=now, ttl_s=60).id
        for _ in range(5)
    ]
    outbox.enqueue(db_session, offline, "sync", SyncPayload(), now=now, ttl_s=60)
    claim = {"limit": 100, "ack_timeout_s": 10.0, "retry_max_s": 40.0, "max_in_flight": 2}
    first = outbox.claim_due(db_session, now=now, **claim)
    assert [c.id for c in first] == ids[:2] and all(c.locker_id == online for c in first)
    assert outbox.claim_due(db_session, now=now, **claim) == []
    # Their ack window passes: the window opens, the oldest due (never sent) go first.
    later = now + timedelta(seconds=12)
    nxt = outbox.claim_due(db_session, now=later, **claim)
    assert [c.id for c in nxt] == ids[2:4] and [c.attempt for c in nxt] == [1, 1]
    wide = {**claim, "max_in_flight": 10}
    retry = outbox.claim_due(db_session, now=later, **wide)
    assert {c.id: c.attempt for c in retry} == {ids[4]: 1, ids[0]: 2, ids[1]: 2}
    assert outbox.backoff(3, base_s=10, max_s=40) >= timedelta(seconds=40)
    expired = outbox.expire_due(db_session, now=now + timedelta(seconds=61), limit=100)
    assert len(expired) == 6 and {e.status for e in expired} == {"expired"}


def test_commands_queued_at_one_instant_go_out_in_the_order_they_were_queued(
    db_session: Session,
) -> None:
    # One transaction's commands share its clock: the claim must not reorder them (a sort on
    # equal times alone hands them out in whatever order the plan gives).
    now = datetime.now(UTC)
    lockers = [_locker(db_session) for _ in range(3)]
    queued = [
        outbox.enqueue(db_session, lockers[i % 3], "sync", SyncPayload(), now=now, ttl_s=60).id
        for i in range(60)
    ]
    # Rows written since (here a change to the first half) move in the heap and the index:
    # on equal times PostgreSQL returns them in whatever order it stored them.
    db_session.execute(
        update(OutboxCommand).where(OutboxCommand.id.in_(queued[:30])).values(ref="touched")
    )
    claim = {"limit": 100, "ack_timeout_s": 10.0, "retry_max_s": 40.0}
    assert [c.id for c in outbox.claim_due(db_session, now=now, **claim)] == queued
    # Sent again after the ack timeout: still in that order (their next attempts differ by
    # their jitter, so only the first claim's order is the queue's).
    taken = outbox.claim_due(db_session, now=now + timedelta(seconds=12), **claim)
    assert sorted(c.id for c in taken) == sorted(queued)


def test_acks_move_forward_only_and_only_for_their_locker(db_session: Session) -> None:
    now = datetime.now(UTC)
    locker, other = _locker(db_session), _locker(db_session)
    cmd = outbox.enqueue(db_session, locker, "sync", SyncPayload(), now=now, ttl_s=60)

    def ack(status: str) -> Ack:
        return Ack(command_id=cmd.id, status=status, at=now)

    def record(*acks: tuple[str, Ack]) -> list[OutboxCommand]:
        return outbox.record_acks(db_session, list(acks), now=now, accepted_timeout_s=60)

    assert record((other, ack("done"))) == []
    assert record((locker, ack("accepted"))) == [cmd]
    assert cmd.next_attempt_at == now + timedelta(seconds=60)  # the accepted timeout runs
    assert record((locker, ack("done")), (locker, ack("done"))) == [cmd]
    assert record((locker, ack("accepted"))) == []
    assert cmd.status == "done"
    late = outbox.record_ack(
        db_session, ack("done"), locker_id=locker, now=now, accepted_timeout_s=60
    )
    assert late is None
