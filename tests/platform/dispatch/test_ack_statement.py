"""The bridge's one-statement ack path (`dispatch.acks`) leaves what one-by-one would."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Ack, SyncPayload
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch import acks, outbox
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.lockers.models import Locker
from tuanbox.lockers.services import CompartmentSpec


def _locker(db_session: Session, online: bool = True) -> str:
    locker, _ = make_locker(db_session, make_station(db_session).id, [CompartmentSpec(0, 1, "S")])
    locker.online = online
    db_session.flush()
    return locker.id


def _rows(db_session: Session, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    db_session.expire_all()
    columns = (
        OutboxCommand.id,
        OutboxCommand.status,
        OutboxCommand.acked_at,
        OutboxCommand.ack_code,
        OutboxCommand.ack_detail,
        OutboxCommand.next_attempt_at,
    )
    found = db_session.execute(select(*columns).where(OutboxCommand.id.in_(ids)))
    return {r[0]: tuple(r[1:]) for r in found}


Batch = list[tuple[str, Ack]]


def _one_by_one(session: Session, batch: Batch, now: datetime) -> list[OutboxCommand]:
    return outbox.apply_acks(session, batch, now=now, accepted_timeout_s=60)


def _at_once(session: Session, batch: Batch, now: datetime) -> list[OutboxCommand]:
    applied = acks.apply_acks_at_once(session, batch, now=now, accepted_timeout_s=60, grain_s=0)
    assert applied.offline == []
    return applied.moved


@pytest.mark.parametrize("apply", [_one_by_one, _at_once], ids=["one_by_one", "at_once"])
def test_a_batch_of_acks_folds_per_command_as_one_by_one_would(
    db_session: Session, apply: Callable[[Session, Batch, datetime], list[OutboxCommand]]
) -> None:
    # The reference (`outbox.apply_acks`, applying each ack to its locked row) and the
    # bridge's one statement (`acks.apply_acks_at_once`) on the same scenario.
    now = datetime.now(UTC)
    locker, other = _locker(db_session), _locker(db_session)
    fresh, accepted, stale, expired, stalled = (
        outbox.enqueue(db_session, locker, "sync", SyncPayload(), now=now, ttl_s=60)
        for _ in range(5)
    )
    accepted.status, expired.status, stalled.status = "accepted", "expired", "stalled"
    stale.status = "done"
    db_session.flush()
    later = now + timedelta(seconds=5)

    def ack(command: OutboxCommand, status: str, code: str | None = None) -> Ack:
        return Ack(command_id=command.id, status=status, code=code, at=later)

    moved = apply(
        db_session,
        [
            (other, ack(fresh, "failed", "FORGED")),  # another locker's: ignored
            (locker, ack(fresh, "accepted")),
            (locker, ack(fresh, "done")),
            (locker, ack(fresh, "done")),  # a repeat changes nothing
            (locker, ack(fresh, "accepted")),  # late: changes nothing
            (locker, ack(accepted, "done")),
            (locker, ack(stale, "accepted")),
            (locker, ack(expired, "done")),
            (locker, ack(stalled, "failed", "INTERRUPTED")),
        ],
        now,
    )
    assert {(m.id, m.status) for m in moved} == {
        (fresh.id, "done"),
        (accepted.id, "done"),
        (stalled.id, "failed"),
    }
    for row in (fresh, accepted, stale, expired, stalled):
        db_session.refresh(row)
    assert (fresh.status, fresh.ack_code) == ("done", None)
    assert fresh.next_attempt_at == now + timedelta(seconds=60)
    assert fresh.acked_at == later
    assert (accepted.status, stale.status, expired.status) == ("done", "done", "expired")
    assert (stalled.status, stalled.ack_code) == ("failed", "INTERRUPTED")
    assert apply(db_session, [], now) == []


def test_random_batches_leave_what_outbox_apply_acks_leaves(db_session: Session) -> None:
    # Both paths on the same rows, each inside a savepoint rolled back: every command in every
    # status, acks in every order, forged, repeated, with codes and details that tell them apart.
    rnd = random.Random(12)
    now = datetime.now(UTC)
    lockers = [_locker(db_session) for _ in range(3)]
    statuses = ["pending", "sent", "accepted", "stalled", "done", "failed", "expired"]
    commands = []
    for i in range(70):
        row = outbox.enqueue(db_session, lockers[i % 3], "sync", SyncPayload(), now=now, ttl_s=60)
        row.status = statuses[i % len(statuses)]
        commands.append(row)
    db_session.flush()
    ids = [c.id for c in commands]
    for trial in range(8):
        batch = []
        for n in range(rnd.randint(1, 160)):
            command = rnd.choice(commands)
            status = rnd.choice(["accepted", "done", "rejected", "failed"])
            sender = command.locker_id if rnd.random() < 0.85 else rnd.choice(lockers)
            at = now + timedelta(milliseconds=rnd.randint(0, 9_000))
            code = None if status in ("accepted", "done") else f"C{trial}_{n}"
            batch.append((sender, Ack(command_id=command.id, status=status, code=code,
                                      detail=f"d{trial}-{n}", at=at)))  # fmt: skip
        later = now + timedelta(seconds=trial)
        outcomes = []
        for at_once in (False, True):
            savepoint = db_session.begin_nested()
            if at_once:
                moved = acks.apply_acks_at_once(
                    db_session, batch, now=later, accepted_timeout_s=30, grain_s=0
                ).moved
            else:
                moved = outbox.apply_acks(db_session, batch, now=later, accepted_timeout_s=30)
            outcomes.append((sorted((m.id, m.status) for m in moved), _rows(db_session, ids)))
            savepoint.rollback()
        assert outcomes[0][0], "a trial where nothing moved proves little"
        assert outcomes[1] == outcomes[0]


def test_lockers_seen_move_once_a_grain_and_offline_ones_are_named(db_session: Session) -> None:
    now = datetime.now(UTC)
    fresh, stale, never, offline = (_locker(db_session) for _ in range(4))
    rows = {r.id: r for r in db_session.scalars(select(Locker))}
    rows[fresh].last_seen_at = now - timedelta(seconds=1)
    rows[stale].last_seen_at = now - timedelta(seconds=10)
    rows[never].last_seen_at = None
    rows[offline].online, rows[offline].last_seen_at = False, now - timedelta(hours=1)
    db_session.flush()
    unknown = Ack(command_id="no-such-command", status="done", at=now)
    applied = acks.apply_acks_at_once(
        db_session,
        [(locker, unknown) for locker in (fresh, stale, never, offline, "not-a-locker")],
        now=now,
        accepted_timeout_s=60,
        grain_s=5,
    )
    assert applied == acks.Applied([], [offline])
    for row in rows.values():
        db_session.refresh(row)
    assert rows[fresh].last_seen_at == now - timedelta(seconds=1)
    assert rows[stale].last_seen_at == now and rows[never].last_seen_at == now
    # heard_from brings an offline locker back (the caller's part): untouched here.
    assert rows[offline].last_seen_at == now - timedelta(hours=1) and not rows[offline].online
