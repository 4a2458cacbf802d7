"""The command outbox: enqueue in the caller's transaction; claim, ack, expire and stall."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    Select,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, SessionTransaction

from edge.protocol.envelopes import Ack, Command, CommandPayload, CommandType, SyncPayload, encode
from tuanbox.dispatch.models import OPEN_STATUSES, STALLED, OutboxCommand
from tuanbox.lockers.domain import as_utc
from tuanbox.lockers.models import Locker

# Ack statuses in the order a command moves through them; a late "accepted" never
# overwrites "done", and a duplicate ack changes nothing. A stalled command (accepted, never
# finished in time) is still settled by a late final ack.
_ACK_RANK = {
    "pending": 0, "sent": 0, "accepted": 1, STALLED: 1, "done": 2, "rejected": 2, "failed": 2
}  # fmt: skip
# A sync in one of these is on its way: asking again would only add another state snapshot.
_SYNC_WAITING = ("pending", "sent", "accepted")
# PostgreSQL channel on which a commit that queued commands wakes the bridges (LISTEN).
CHANNEL = "tuanbox_outbox"
_NOTIFIED_KEY = "tuanbox_outbox_notified"


def enqueue(
    session: Session,
    locker_id: str,
    type: CommandType,
    payload: CommandPayload,
    *,
    now: datetime,
    ttl_s: float,
    ref: str | None = None,
) -> OutboxCommand:
    """Add a command to the outbox; it is sent only if the caller's transaction commits."""
    command = Command.new(type, payload, issued_at=now, ttl_seconds=ttl_s)
    row = OutboxCommand(
        id=command.id,
        locker_id=locker_id,
        type=type,
        body=encode(command).decode(),
        ref=ref,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        expires_at=command.expires_at,
        created_at=now,  # the caller's clock, like every other time of this row
    )
    session.add(row)
    session.flush()
    notify_bridges(session)
    return row


def notify_bridges(session: Session) -> None:
    """Wake the bridges when the caller's transaction commits (PostgreSQL's NOTIFY is
    delivered on commit, and dropped on rollback); a no-op on SQLite, where bridges poll.

    Once per transaction: a later NOTIFY in the same top-level transaction adds nothing. One
    issued inside a savepoint is not remembered, since rolling the savepoint back drops it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    current: SessionTransaction | None = session.get_transaction()
    nested = session.in_nested_transaction()
    if not nested and current is not None and session.info.get(_NOTIFIED_KEY) is current:
        return
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    if not nested:
        session.info[_NOTIFIED_KEY] = current


def request_sync(
    session: Session,
    locker_id: str,
    *,
    now: datetime,
    ttl_s: float,
    reason: str,
    min_interval_s: float | None = None,
) -> OutboxCommand | None:
    """Ask a locker for a fresh state snapshot, unless a sync is already on its way to it (or,
    with ``min_interval_s``, one was asked for the same reason that recently); None when
    nothing was queued.

    Two bridges deciding at once for one locker may both queue one: a spare snapshot."""
    recent = select(OutboxCommand.id).where(
        OutboxCommand.locker_id == locker_id, OutboxCommand.type == "sync"
    )
    waiting = recent.where(OutboxCommand.status.in_(_SYNC_WAITING), OutboxCommand.expires_at > now)
    if session.scalars(waiting.limit(1)).first() is not None:
        return None
    ref = f"sync:{reason}"[:64]
    if min_interval_s is not None:
        since = now - timedelta(seconds=min_interval_s)
        same = recent.where(OutboxCommand.ref == ref, OutboxCommand.created_at > since)
        if session.scalars(same.limit(1)).first() is not None:
            return None
    return enqueue(session, locker_id, "sync", SyncPayload(), now=now, ttl_s=ttl_s, ref=ref)


@dataclass(frozen=True)
class Claimed:
    """A command a bridge has taken to publish now."""

    id: str
    locker_id: str
    body: bytes
    attempt: int


def backoff(attempt: int, *, base_s: float, max_s: float) -> timedelta:
    """Wait before the next attempt: doubling from the ack timeout, capped, with 10 % jitter."""
    delay = min(base_s * 2 ** max(attempt - 1, 0), max_s)
    return timedelta(seconds=delay * (1 + random.random() * 0.1))


def in_flight(session: Session, *, now: datetime) -> int:
    """Commands sent and still inside their ack window."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxCommand)
            .where(OutboxCommand.status == "sent", OutboxCommand.next_attempt_at > now)
        )
        or 0
    )


def claim_due(
    session: Session,
    *,
    now: datetime,
    limit: int,
    ack_timeout_s: float,
    retry_max_s: float,
    max_in_flight: int | None = None,
) -> list[Claimed]:
    """Take due commands of online lockers and push their next attempt into the future.

    ``FOR UPDATE SKIP LOCKED`` lets several bridges claim concurrently without taking the
    same rows; the caller commits, then publishes. A bridge that dies in between leaves the
    rows to be claimed again when their next attempt comes due: at least once, and the
    locker answers a repeated command id with the same ack.
    """
    if max_in_flight is not None:
        # A window over all bridges: more unacked commands than the broker queues for a slow
        # consumer (Mosquitto drops beyond max_queued_messages) would only come back as
        # retries after the ack timeout.
        limit = min(limit, max_in_flight - in_flight(session, now=now))
        if limit <= 0:
            return []
    due = (
        select(OutboxCommand)
        .join(Locker, Locker.id == OutboxCommand.locker_id)
        .where(
            OutboxCommand.status.in_(OPEN_STATUSES),
            OutboxCommand.next_attempt_at <= now,
            OutboxCommand.expires_at > now,
            Locker.online.is_(True),
        )
        .order_by(OutboxCommand.next_attempt_at, OutboxCommand.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxCommand)
    )
    if session.get_bind().dialect.name == "postgresql":
        return _claim_at_once(
            session, due, now=now, ack_timeout_s=ack_timeout_s, retry_max_s=retry_max_s
        )
    rows = session.scalars(due).all()
    claimed = []
    for row in rows:
        row.attempts += 1
        row.status = "sent"
        row.last_sent_at = now
        row.next_attempt_at = now + backoff(row.attempts, base_s=ack_timeout_s, max_s=retry_max_s)
        claimed.append(Claimed(row.id, row.locker_id, row.body.encode(), row.attempts))
    session.flush()
    return claimed


def _claim_at_once(
    session: Session,
    due: Select[Any],
    *,
    now: datetime,
    ack_timeout_s: float,
    retry_max_s: float,
) -> list[Claimed]:
    """`claim_due` in one statement: lock the due rows (skipping those another bridge holds)
    and push their next attempt back by `backoff` (the same formula, in SQL)."""
    picked = (
        due.with_only_columns(
            OutboxCommand.id.label("id"),
            OutboxCommand.next_attempt_at.label("due_at"),
            OutboxCommand.created_at.label("created_at"),
        )
    ).cte("due")
    # backoff(attempts + 1): doubling from the ack timeout, capped, with 10 % jitter per row.
    delay_s = func.least(ack_timeout_s * func.power(2, OutboxCommand.attempts), retry_max_s) * (
        1 + func.random() * 0.1
    )
    statement = (
        update(OutboxCommand)
        .where(OutboxCommand.id == picked.c.id)
        .values(
            attempts=OutboxCommand.attempts + 1,
            status="sent",
            last_sent_at=now,
            next_attempt_at=literal(now, OutboxCommand.next_attempt_at.type)
            + func.make_interval(0, 0, 0, 0, 0, 0, delay_s, type_=Interval()),
        )
        .returning(
            OutboxCommand.id,
            OutboxCommand.locker_id,
            OutboxCommand.body,
            OutboxCommand.attempts,
            picked.c.due_at,
            picked.c.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    rows = sorted(session.execute(statement).all(), key=lambda r: (r.due_at, r.created_at))
    return [Claimed(r.id, r.locker_id, r.body.encode(), r.attempts) for r in rows]


def expire_due(session: Session, *, now: datetime, limit: int) -> list[OutboxCommand]:
    """Mark open commands past their expiry as expired and return them (for ops follow-up)."""
    rows = session.scalars(
        select(OutboxCommand)
        .where(OutboxCommand.status.in_(OPEN_STATUSES), OutboxCommand.expires_at <= now)
        .order_by(OutboxCommand.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status = "expired"
    session.flush()
    return list(rows)


def _move(row: OutboxCommand, ack: Ack, *, now: datetime, accepted_timeout_s: float) -> bool:
    """Apply one ack to its (locked) row; True if the status moved."""
    if row.status == "expired" or _ACK_RANK[ack.status] <= _ACK_RANK.get(row.status, 2):
        return False
    row.status = ack.status
    row.acked_at = ack.at
    row.ack_code = ack.code
    row.ack_detail = ack.detail
    if ack.status == "accepted":
        # From now on the row waits for "done", on our clock: see stall_due.
        row.next_attempt_at = now + timedelta(seconds=accepted_timeout_s)
    return True


def record_ack(
    session: Session, ack: Ack, *, locker_id: str, now: datetime, accepted_timeout_s: float
) -> OutboxCommand | None:
    """Apply an ack; return the command if its status moved, None for unknown or stale acks.

    An ack from another locker than the command's is ignored: the ACL should make it
    impossible, and it must not let one locker settle another's commands.
    """
    row = session.scalars(
        select(OutboxCommand).where(OutboxCommand.id == ack.command_id).with_for_update()
    ).one_or_none()
    if row is None or row.locker_id != locker_id:
        return None
    if not _move(row, ack, now=now, accepted_timeout_s=accepted_timeout_s):
        return None
    session.flush()
    return row


def record_acks(
    session: Session, acks: list[tuple[str, Ack]], *, now: datetime, accepted_timeout_s: float
) -> list[OutboxCommand]:
    """`record_ack` for many acks with one locking read: the bridge's batched path.

    (One UPDATE ... FROM (VALUES ...) for the whole batch was measured slower on PostgreSQL
    than these per-row UPDATEs, which psycopg pipelines: planning the VALUES list cost more
    than it saved, and its row locks would no longer be taken in id order.)"""
    if not acks:
        return []
    rows = {
        row.id: row
        for row in session.scalars(
            select(OutboxCommand)
            .where(OutboxCommand.id.in_({ack.command_id for _, ack in acks}))
            .order_by(OutboxCommand.id)  # a fixed lock order: concurrent bridges never deadlock
            .with_for_update()
        )
    }
    moved: dict[str, OutboxCommand] = {}
    for locker_id, ack in acks:
        row = rows.get(ack.command_id)
        if row is None or row.locker_id != locker_id:
            continue
        if _move(row, ack, now=now, accepted_timeout_s=accepted_timeout_s):
            moved[row.id] = row
    session.flush()
    return list(moved.values())


def stall_due(session: Session, *, now: datetime, limit: int) -> list[OutboxCommand]:
    """Accepted commands whose accepted timeout ran out without a final ack: mark them
    stalled and return them (the caller syncs the locker, alerts ops and re-sends them)."""
    rows = session.scalars(
        select(OutboxCommand)
        .where(OutboxCommand.status == "accepted", OutboxCommand.next_attempt_at <= now)
        .order_by(OutboxCommand.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status = STALLED
    session.flush()
    return list(rows)


def reschedule_locker(session: Session, locker_id: str, *, now: datetime) -> int:
    """Make a locker's waiting commands due now (it just came back online)."""
    result = session.execute(
        update(OutboxCommand)
        .where(
            OutboxCommand.locker_id == locker_id,
            OutboxCommand.status.in_(OPEN_STATUSES),
            OutboxCommand.expires_at > now,
        )
        .values(next_attempt_at=now)
    )
    moved = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if moved:
        notify_bridges(session)
    return moved


def next_due_at(session: Session) -> datetime | None:
    """When the earliest open or accepted command comes due (a retry, or the accepted
    timeout): the bridge sleeps until then at most."""
    value = session.scalar(
        select(OutboxCommand.next_attempt_at)
        .where(OutboxCommand.status.in_((*OPEN_STATUSES, "accepted")))
        .order_by(OutboxCommand.next_attempt_at)
        .limit(1)
    )
    return as_utc(value) if value else None
