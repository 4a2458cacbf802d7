"""The command outbox: enqueue in the caller's transaction; claim, ack, expire and stall."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Interval,
    Select,
    Table,
    bindparam,
    func,
    literal,
    select,
    text,
    true,
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
    return claim_window(
        session,
        now=now,
        limit=limit,
        ack_timeout_s=ack_timeout_s,
        retry_max_s=retry_max_s,
        max_in_flight=max_in_flight,
    )[0]


def claim_window(
    session: Session,
    *,
    now: datetime,
    limit: int,
    ack_timeout_s: float,
    retry_max_s: float,
    max_in_flight: int | None = None,
) -> tuple[list[Claimed], int]:
    """`claim_due`, and the in-flight window as it was before this claim: how many more
    commands could be sent (``limit`` when there is no window). The bridge's path: on
    PostgreSQL the window, the locking read and the update are one statement."""
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "now": now,
            "limit": limit,
            "max_in_flight": limit if max_in_flight is None else max_in_flight,
            "ack_timeout_s": ack_timeout_s,
            "retry_max_s": retry_max_s,
        }
        result = session.execute(
            _claim_statement(windowed=max_in_flight is not None),
            params,
            execution_options={"synchronize_session": False},
        ).all()
        taken = sorted(
            (r for r in result if r.id is not None),
            key=lambda r: (r.due_at, r.created_at, r.seq or 0),
        )
        claimed = [Claimed(r.id, r.locker_id, r.body.encode(), r.attempts) for r in taken]
        return claimed, int(result[0].n)
    due = _due(literal(now, OutboxCommand.next_attempt_at.type))
    # A window over all bridges: more unacked commands than the broker queues for a slow
    # consumer (Mosquitto drops beyond max_queued_messages) would only come back as retries
    # after the ack timeout.
    window = limit if max_in_flight is None else max_in_flight - in_flight(session, now=now)
    if min(limit, window) <= 0:
        return [], window
    rows = session.scalars(due.limit(min(limit, window))).all()
    claimed = []
    for row in rows:
        row.attempts += 1
        row.status = "sent"
        row.last_sent_at = now
        row.next_attempt_at = now + backoff(row.attempts, base_s=ack_timeout_s, max_s=retry_max_s)
        claimed.append(Claimed(row.id, row.locker_id, row.body.encode(), row.attempts))
    session.flush()
    return claimed, window


def _due(now: Any) -> Select[Any]:
    """Due commands of online lockers, oldest due first (then in the order they were queued),
    locked (skipping those another bridge holds)."""
    return (
        select(OutboxCommand)
        .join(Locker, Locker.id == OutboxCommand.locker_id)
        .where(
            OutboxCommand.status.in_(OPEN_STATUSES),
            OutboxCommand.next_attempt_at <= now,
            OutboxCommand.expires_at > now,
            Locker.online.is_(True),
        )
        .order_by(OutboxCommand.next_attempt_at, OutboxCommand.created_at, OutboxCommand.seq)
        .with_for_update(skip_locked=True, of=OutboxCommand)
    )


@functools.cache
def _claim_statement(*, windowed: bool) -> Select[Any]:
    """`claim_window` on PostgreSQL in one statement: count the window, lock the due rows
    within it and push their next attempt back by `backoff` (the same formula, in SQL). The
    window comes back on a row of its own even when nothing was claimed (an outer join of the
    window with the updated rows). Built once with bound parameters (now, limit,
    max_in_flight, ack_timeout_s, retry_max_s), so a pass neither rebuilds nor re-keys it."""
    now = bindparam("now", type_=OutboxCommand.next_attempt_at.type)
    limit = bindparam("limit", type_=Integer())
    if windowed:
        window = (
            select((bindparam("max_in_flight", type_=Integer()) - func.count()).label("n"))
            .select_from(OutboxCommand)
            .where(OutboxCommand.status == "sent", OutboxCommand.next_attempt_at > now)
        ).cte("window")
    else:  # max_in_flight is then passed as the limit
        window = select(bindparam("max_in_flight", type_=Integer()).label("n")).cte("window")
    room = func.greatest(0, func.least(limit, select(window.c.n).scalar_subquery()))
    picked = (
        _due(now)
        .with_only_columns(
            OutboxCommand.id.label("id"),
            OutboxCommand.next_attempt_at.label("due_at"),
            OutboxCommand.created_at.label("created_at"),
            OutboxCommand.seq.label("seq"),
        )
        .limit(room)
    ).cte("due")
    # backoff(attempts + 1): doubling from the ack timeout, capped, with 10 % jitter per row.
    ack_timeout_s = bindparam("ack_timeout_s", type_=Float())
    retry_max_s = bindparam("retry_max_s", type_=Float())
    delay_s = func.least(ack_timeout_s * func.power(2, OutboxCommand.attempts), retry_max_s) * (
        1 + func.random() * 0.1
    )
    claimed = (
        update(OutboxCommand)
        .where(OutboxCommand.id == picked.c.id)
        .values(
            attempts=OutboxCommand.attempts + 1,
            status="sent",
            last_sent_at=now,
            next_attempt_at=now + func.make_interval(0, 0, 0, 0, 0, 0, delay_s, type_=Interval()),
        )
        .returning(
            OutboxCommand.id,
            OutboxCommand.locker_id,
            OutboxCommand.body,
            OutboxCommand.attempts,
            picked.c.due_at,
            picked.c.created_at,
            picked.c.seq,
        )
    ).cte("claimed")
    return select(window.c.n, *claimed.c).select_from(window.outerjoin(claimed, true()))


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
    """`record_ack` for many acks: `apply_acks`, then the commands that moved, loaded."""
    moved = apply_acks(session, acks, now=now, accepted_timeout_s=accepted_timeout_s)
    if not moved:
        return []
    rows = {
        row.id: row
        for row in session.scalars(
            select(OutboxCommand)
            .where(OutboxCommand.id.in_([m.id for m in moved]))
            .execution_options(populate_existing=True)
        )
    }
    return [rows[m.id] for m in moved]


@dataclass(frozen=True)
class Moved:
    """A command whose status an ack moved, and the status it moved to."""

    id: str
    status: str


_ACK_COLUMNS = ("status", "acked_at", "ack_code", "ack_detail")


def apply_acks(
    session: Session, acks: list[tuple[str, Ack]], *, now: datetime, accepted_timeout_s: float
) -> list[Moved]:
    """Apply a batch of acks (the bridge's path): one locking read of the commands in id order
    (so concurrent bridges never deadlock), the rank rules in Python, then one executemany
    UPDATE per set of columns written (Core: no ORM unit of work). Acks of one command in the
    batch fold into one write (accepted then done: done, with the accepted timeout noted as
    `_move` notes it); an ack from another locker than the command's, a stale or a repeated
    one, or one for an expired command changes nothing.

    (One UPDATE ... FROM (VALUES ...) for the whole batch was measured slower on PostgreSQL
    than these per-row UPDATEs, which psycopg pipelines: planning the VALUES list cost more
    than it saved, and its row locks would no longer be taken in id order.)"""
    if not acks:
        return []
    table: Table = OutboxCommand.__table__  # type: ignore[assignment]
    held = {
        row.id: (row.locker_id, row.status)
        for row in session.execute(
            select(table.c.id, table.c.locker_id, table.c.status)
            .where(table.c.id.in_({ack.command_id for _, ack in acks}))
            .order_by(table.c.id)
            .with_for_update()
        )
    }
    changes: dict[str, dict[str, Any]] = {}
    for locker_id, ack in acks:
        found = held.get(ack.command_id)
        if found is None or found[0] != locker_id:
            continue
        status = found[1]
        if status == "expired" or _ACK_RANK[ack.status] <= _ACK_RANK.get(status, 2):
            continue
        held[ack.command_id] = (locker_id, ack.status)
        change = changes.setdefault(ack.command_id, {"b_id": ack.command_id})
        change.update(status=ack.status, acked_at=ack.at, ack_code=ack.code, ack_detail=ack.detail)
        if ack.status == "accepted":
            # From now on the row waits for "done", on our clock: see stall_due.
            change["next_attempt_at"] = now + timedelta(seconds=accepted_timeout_s)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes.values():
        by_columns.setdefault(tuple(sorted(change)), []).append(change)
    for columns, params in by_columns.items():
        values: dict[str, Any] = {name: bindparam(name) for name in columns if name != "b_id"}
        statement = update(table).where(table.c.id == bindparam("b_id")).values(values)
        session.execute(statement, params)
    return [Moved(command_id, change["status"]) for command_id, change in changes.items()]


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


@dataclass(frozen=True)
class DueTimes:
    """When the outbox next needs a bridge's housekeeping, as of one read."""

    expiry: datetime | None  # the earliest expiry of an open command
    stall: datetime | None  # the earliest accepted timeout
    due: datetime | None  # the earliest retry or accepted timeout (`next_due_at`)


def due_times(session: Session) -> DueTimes:
    """The housekeeping's one read: whether anything is to expire or stall now, and when the
    next retry or timeout comes due (three minimums in one round trip, instead of the locking
    reads of `expire_due` and `stall_due` on every pass)."""
    open_ = OutboxCommand.status.in_(OPEN_STATUSES)
    accepted = OutboxCommand.status == "accepted"
    row = session.execute(
        select(
            select(func.min(OutboxCommand.expires_at)).where(open_).scalar_subquery(),
            select(func.min(OutboxCommand.next_attempt_at)).where(accepted).scalar_subquery(),
            select(func.min(OutboxCommand.next_attempt_at)).where(open_).scalar_subquery(),
        )
    ).one()
    expiry, stall, retry = (as_utc(value) if value else None for value in row)
    due = min((t for t in (stall, retry) if t is not None), default=None)
    return DueTimes(expiry=expiry, stall=stall, due=due)


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
