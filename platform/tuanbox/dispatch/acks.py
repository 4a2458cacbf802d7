"""A batch of acks in one statement (PostgreSQL): the bridge's ack path.

`outbox.apply_acks` takes four to six round trips a batch (the locking read, the pipelined
UPDATEs, the lockers' locking read and UPDATE); on a loaded box each round trip waits for
the bridge's thread and its backend to be scheduled again, and that, with the commit, was
most of an inbound transaction's time (bench/RESULTS.md). Here the acks are folded per
command in Python first, into what one-by-one application would leave for each status the
command can be found in, and one statement then locks the commands in id order (as
`apply_acks` does, so concurrent bridges never deadlock), writes the folded outcome chosen
by the status it found, moves the lockers' ``last_seen_at`` and names the lockers found
offline. A batch of nothing but ``accepted`` and ``done`` acks needs nothing else, so the
bridge runs it alone, in autocommit: one round trip and one commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Ack
from tuanbox.db.base import utcnow
from tuanbox.dispatch.outbox import Moved

# An ack's rank (see outbox._ACK_RANK): accepted 1, every final status 2.
_RANK = {"accepted": 1, "done": 2, "rejected": 2, "failed": 2}
# Acks that settle nothing beyond the command's row: a batch of only these needs no other write.
PLAIN = frozenset({"accepted", "done"})


@dataclass(frozen=True)
class Folded:
    """What a batch's acks of one command (from one locker) leave, one by one.

    ``from_open``: the ack the command ends on when found pending or sent (the first of the
    highest rank), and whether an ``accepted`` moved it on the way (it then waits for
    ``done`` from the batch's clock). ``from_accepted``: the first final ack, which is all
    that moves a command found accepted or stalled (None when there is none)."""

    command_id: str
    locker_id: str
    from_open: Ack
    waits: bool
    from_accepted: Ack | None


def fold(acks: list[tuple[str, Ack]]) -> list[Folded]:
    """Fold acks per (command, locker), keeping the order they arrived in. An ack from another
    locker than the command's forms a group of its own, which the statement never matches."""
    groups: dict[tuple[str, str], list[Ack]] = {}
    for locker_id, ack in acks:
        groups.setdefault((ack.command_id, locker_id), []).append(ack)
    folded = []
    for (command_id, locker_id), group in groups.items():
        top = max(_RANK[a.status] for a in group)
        from_open = next(a for a in group if _RANK[a.status] == top)
        final = next((a for a in group if _RANK[a.status] == 2), None)
        # From pending or sent, the first ack moves it; an accepted one sets the timeout.
        waits = group[0].status == "accepted"
        folded.append(Folded(command_id, locker_id, from_open, waits, final))
    return folded


# The commands are locked in id order by `held` (a sort under the row locks); `moved` writes
# the outcome for the status each was found in; `seen` moves the online lockers' last_seen_at
# when older than the cutoff, locked in id order after the commands (as `apply_acks` then
# `heard_from_many` lock them). Lockers found offline are returned for `heard_from`.
_STATEMENT = text(
    """
WITH v AS (
    SELECT * FROM unnest(
        CAST(:ids AS text[]), CAST(:lockers AS text[]),
        CAST(:s0 AS text[]), CAST(:at0 AS timestamptz[]), CAST(:code0 AS text[]),
        CAST(:detail0 AS text[]), CAST(:waits AS boolean[]),
        CAST(:s1 AS text[]), CAST(:at1 AS timestamptz[]), CAST(:code1 AS text[]),
        CAST(:detail1 AS text[])
    ) AS v(id, locker_id, s0, at0, code0, detail0, waits, s1, at1, code1, detail1)
), held AS (
    SELECT o.id, o.locker_id, o.status IN ('pending', 'sent') AS open
    FROM outbox_commands o JOIN v ON v.id = o.id AND v.locker_id = o.locker_id
    WHERE o.status IN ('pending', 'sent', 'accepted', 'stalled')
    ORDER BY o.id
    FOR UPDATE OF o
), moved AS (
    UPDATE outbox_commands o SET
        status = CASE WHEN h.open THEN v.s0 ELSE v.s1 END,
        acked_at = CASE WHEN h.open THEN v.at0 ELSE v.at1 END,
        ack_code = CASE WHEN h.open THEN v.code0 ELSE v.code1 END,
        ack_detail = CASE WHEN h.open THEN v.detail0 ELSE v.detail1 END,
        next_attempt_at = CASE WHEN h.open AND v.waits THEN :wait_until
                               ELSE o.next_attempt_at END,
        updated_at = :stamp
    FROM held h JOIN v ON v.id = h.id AND v.locker_id = h.locker_id
    WHERE o.id = h.id AND (h.open OR v.s1 IS NOT NULL)
    RETURNING o.id, o.status
), stale AS (
    SELECT l.id FROM lockers l
    WHERE l.id = ANY(CAST(:seen AS text[])) AND l.online
        AND (l.last_seen_at IS NULL OR l.last_seen_at < :cutoff)
    ORDER BY l.id
    FOR UPDATE OF l
), seen AS (
    UPDATE lockers l SET last_seen_at = :now, updated_at = :stamp
    FROM stale WHERE l.id = stale.id
    RETURNING l.id
)
SELECT 'moved' AS what, id, status FROM moved
UNION ALL SELECT 'seen', id, NULL FROM seen
UNION ALL SELECT 'offline', id, NULL FROM lockers
    WHERE id = ANY(CAST(:seen AS text[])) AND NOT online
"""
)


@dataclass(frozen=True)
class Applied:
    """What one batch's statement did: the commands that moved, the lockers found offline."""

    moved: list[Moved]
    offline: list[str]


def apply_acks_at_once(
    db: Session | Connection,
    acks: list[tuple[str, Ack]],
    *,
    now: datetime,
    accepted_timeout_s: float,
    grain_s: float,
) -> Applied:
    """Apply a batch of acks as `outbox.apply_acks` then `inbound.heard_from_many` would (acks
    move forward only, only for their locker, folded per command as one by one), in one
    statement; the lockers found offline are returned for `inbound.heard_from_many`.

    PostgreSQL only. Run alone in autocommit it is its own transaction."""
    if not acks:
        return Applied([], [])
    folded = fold(acks)
    final = [f.from_accepted for f in folded]
    params: dict[str, Any] = {
        "ids": [f.command_id for f in folded],
        "lockers": [f.locker_id for f in folded],
        "s0": [f.from_open.status for f in folded],
        "at0": [f.from_open.at for f in folded],
        "code0": [f.from_open.code for f in folded],
        "detail0": [f.from_open.detail for f in folded],
        "waits": [f.waits for f in folded],
        "s1": [a.status if a else None for a in final],
        "at1": [a.at if a else None for a in final],
        "code1": [a.code if a else None for a in final],
        "detail1": [a.detail if a else None for a in final],
        "wait_until": now + timedelta(seconds=accepted_timeout_s),
        "seen": sorted({locker_id for locker_id, _ in acks}),
        "now": now,
        "cutoff": now - timedelta(seconds=grain_s),
        "stamp": utcnow(),
    }
    moved: list[Moved] = []
    offline: list[str] = []
    for what, ident, status in db.execute(_STATEMENT, params):
        if what == "moved":
            moved.append(Moved(ident, status))
        elif what == "offline":
            offline.append(ident)
    return Applied(moved, offline)
