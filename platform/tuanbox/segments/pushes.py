"""Targeted pushes: a coupon or a message to a segment's members through the notification
port, once per (push, shopper) however often it runs, at most N per shopper per window.

The push row (unique `key`) is locked for the whole send, so two runs of the same push wait
for each other and the second finds every member already recorded. Coupons go through
`coupons.issue_to_users` with the push's key, which is itself once per (key, user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.accounts.models import new_id
from tuanbox.coupons.errors import CouponExpiredError
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.notifications.services import Notifier, notify
from tuanbox.segments import services as segments
from tuanbox.segments.models import Push, PushRecipient, ScheduledPush
from tuanbox.settings import Settings

TEMPLATE = "segment_push"


@dataclass
class Sent:
    push_id: str
    sent: list[str] = field(default_factory=list)
    rate_limited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    already: int = 0


def _push_row(
    session: Session,
    *,
    merchant_id: str,
    segment_id: str,
    kind: str,
    key: str,
    coupon_template_id: str | None,
    message: str | None,
    conversion_days: int,
    now: datetime,
) -> Push:
    if kind not in ("coupon", "message"):
        raise InvalidInputError("kind must be coupon or message", field="kind")
    if kind == "coupon" and not coupon_template_id:
        raise InvalidInputError(
            "a coupon push needs coupon_template_id", field="coupon_template_id"
        )
    if kind == "message" and not (message and 1 <= len(message) <= 500):
        raise InvalidInputError(
            "a message push needs a message of 1 to 500 characters", field="message"
        )
    segments.get(session, merchant_id, segment_id)
    # Insert-or-keep, then lock: a concurrent first run of the same key waits on the
    # conflict until the other commits, then finds the row and every recipient recorded.
    ins = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        ins(Push)
        .values(
            id=new_id(),
            key=key,
            merchant_id=merchant_id,
            segment_id=segment_id,
            kind=kind,
            coupon_template_id=coupon_template_id,
            message=message,
            conversion_days=conversion_days,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.scalars(
        select(Push)
        .where(Push.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if row.merchant_id != merchant_id:
        raise NotFoundError("no such push")
    return row


def send(
    session: Session,
    settings: Settings,
    *,
    merchant_id: str,
    segment_id: str,
    kind: str,
    key: str,
    coupon_template_id: str | None = None,
    message: str | None = None,
    now: datetime | None = None,
    notifier: Notifier | None = None,
) -> Sent:
    """Send (or finish sending) the push named `key`; a re-run sends nothing twice."""
    now = now or utcnow()
    push = _push_row(
        session,
        merchant_id=merchant_id,
        segment_id=segment_id,
        kind=kind,
        key=key,
        coupon_template_id=coupon_template_id,
        message=message,
        conversion_days=settings.push_conversion_days,
        now=now,
    )
    segment = segments.get(session, merchant_id, push.segment_id)
    members = segments.members_query(segment, now).subquery()
    done = select(PushRecipient.user_id).where(PushRecipient.push_id == push.id)
    todo = list(
        session.scalars(
            select(members.c.user_id)
            .where(members.c.user_id.not_in(done))
            .order_by(members.c.user_id)
        )
    )
    result = Sent(push_id=push.id)
    result.already = (
        session.scalar(
            select(func.count()).select_from(PushRecipient).where(PushRecipient.push_id == push.id)
        )
        or 0
    )
    if not todo:
        return result
    # Pushes each shopper got within the window (one grouped query over the members).
    since = now - timedelta(seconds=settings.push_window_s)
    recent = dict(
        session.execute(
            select(PushRecipient.user_id, func.count())
            .where(
                PushRecipient.status == "sent",
                PushRecipient.sent_at >= since,
                PushRecipient.user_id.in_(select(members.c.user_id)),
            )
            .group_by(PushRecipient.user_id)
        ).all()
    )
    allowed = [u for u in todo if recent.get(u, 0) < settings.push_per_user_limit]
    result.rate_limited = [u for u in todo if recent.get(u, 0) >= settings.push_per_user_limit]
    delivered = _deliver(session, settings, push, allowed, now, notifier)
    result.sent = [u for u in allowed if u in delivered.notices]
    result.skipped = delivered.skipped
    rows: list[dict[str, object]] = [
        {"user_id": u, "status": "sent", "notification_id": n} for u, n in delivered.notices.items()
    ]
    rows += [
        {"user_id": u, "status": "skipped", "notification_id": None} for u in delivered.skipped
    ]
    rows += [
        {"user_id": u, "status": "rate_limited", "notification_id": None}
        for u in result.rate_limited
    ]
    session.execute(
        insert(PushRecipient),
        [{"push_id": push.id, "sent_at": now, **row} for row in rows],
    )
    return result


@dataclass
class _Delivered:
    notices: dict[str, int] = field(default_factory=dict)  # user -> notification id
    skipped: dict[str, str] = field(default_factory=dict)  # user -> why (coupon audience)


def _deliver(
    session: Session,
    settings: Settings,
    push: Push,
    users: list[str],
    now: datetime,
    notifier: Notifier | None,
) -> _Delivered:
    """The push's coupon (once per push key and user) and notice to each of `users`."""
    out = _Delivered()
    if not users:
        return out
    coupons: dict[str, str] = {}
    if push.kind == "coupon":
        from tuanbox.coupons.services import issue_to_users

        assert push.coupon_template_id is not None
        issued = issue_to_users(
            session, push.coupon_template_id, users, f"push:{push.key}", source="list", now=now
        )
        for coupon in [*issued.issued, *issued.replayed]:
            coupons[coupon.user_id] = coupon.id
        out.skipped = dict(issued.skipped)
    for user_id in users:
        if user_id in out.skipped:
            continue
        payload: dict[str, str] = {"push_id": push.id, "kind": push.kind}
        if push.kind == "coupon":
            payload["coupon_id"] = coupons[user_id]
        else:
            payload["message"] = push.message or ""
        note = notify(session, user_id, TEMPLATE, payload, settings=settings, notifier=notifier)
        out.notices[user_id] = note.id
    return out


# Held recipients are retried while their push is younger than this many rate windows: a
# shopper held at T is allowed again by T + one window unless newer pushes used the room.
HELD_RETRY_WINDOWS = 2
HELD_BATCH = 1_000  # held recipients one retry run looks at


@dataclass
class Retried:
    sent: int = 0
    still_held: int = 0
    skipped: int = 0  # no longer in the segment, or outside the coupon's audience


def retry_held(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    notifier: Notifier | None = None,
) -> Retried:
    """Send each held (``rate_limited``) recipient of a recent push whose rate window has room
    now, oldest push first; a shopper held by several pushes gets them as the limit allows.

    Exactly once: each push row is locked as ``send`` locks it, the held rows are re-read
    under that lock and moved to ``sent`` (or ``skipped``) in the transaction that records
    the notice and issues the coupon (itself once per push key and user), so a second run,
    a concurrent one or a re-run of the push finds nothing left to do. A shopper who left the
    segment meanwhile is skipped, not sent."""
    now = now or utcnow()
    window = timedelta(seconds=settings.push_window_s)
    horizon = now - window * HELD_RETRY_WINDOWS
    recent_pushes = select(Push.id).where(Push.created_at >= horizon)
    candidates = list(
        session.scalars(
            select(PushRecipient.push_id)
            .where(
                PushRecipient.push_id.in_(recent_pushes),
                PushRecipient.status == "rate_limited",
            )
            .group_by(PushRecipient.push_id)
            .limit(HELD_BATCH)
        )
    )
    pushes = session.scalars(
        select(Push).where(Push.id.in_(candidates)).order_by(Push.created_at, Push.id)
    ).all()
    out = Retried()
    for candidate in pushes:
        push = session.scalars(
            select(Push)
            .where(Push.id == candidate.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        held = list(
            session.scalars(
                select(PushRecipient.user_id)
                .where(PushRecipient.push_id == push.id, PushRecipient.status == "rate_limited")
                .order_by(PushRecipient.user_id)
                .limit(HELD_BATCH)
            )
        )
        if not held:
            continue  # another run sent them while this one waited for the lock
        segment = segments.get(session, push.merchant_id, push.segment_id)
        members = segments.members_query(segment, now).subquery()
        still = set(session.scalars(select(members.c.user_id).where(members.c.user_id.in_(held))))
        recent = dict(
            session.execute(
                select(PushRecipient.user_id, func.count())
                .where(
                    PushRecipient.status == "sent",
                    PushRecipient.sent_at >= now - window,
                    PushRecipient.user_id.in_(held),
                )
                .group_by(PushRecipient.user_id)
            ).all()
        )
        gone = [u for u in held if u not in still]
        allowed = [
            u for u in held if u in still and recent.get(u, 0) < settings.push_per_user_limit
        ]
        out.still_held += len(held) - len(gone) - len(allowed)
        try:
            delivered = _deliver(session, settings, push, allowed, now, notifier)
        except CouponExpiredError:
            # The template is no longer issued: nothing to send them any more.
            delivered = _Delivered(skipped={u: "COUPON_EXPIRED" for u in allowed})
        updates = [
            {"p": push.id, "u": u, "s": "sent", "n": n} for u, n in delivered.notices.items()
        ]
        updates += [
            {"p": push.id, "u": u, "s": "skipped", "n": None} for u in [*gone, *delivered.skipped]
        ]
        for row in updates:
            session.execute(
                update(PushRecipient)
                .where(
                    PushRecipient.push_id == row["p"],
                    PushRecipient.user_id == row["u"],
                    PushRecipient.status == "rate_limited",
                )
                .values(status=row["s"], notification_id=row["n"], sent_at=now)
            )
        session.flush()
        out.sent += len(delivered.notices)
        out.skipped += len(gone) + len(delivered.skipped)
    return out


@dataclass(frozen=True)
class PushStats:
    push: Push
    sent: int
    rate_limited: int
    skipped: int
    converted: int


def stats(session: Session, merchant_id: str, push_id: str) -> PushStats:
    """Delivery and conversion (a recipient's order at the merchant paid within the window)."""
    push = session.get(Push, push_id)
    if push is None or push.merchant_id != merchant_id:
        raise NotFoundError("no such push")
    counts = dict(
        session.execute(
            select(PushRecipient.status, func.count())
            .where(PushRecipient.push_id == push_id)
            .group_by(PushRecipient.status)
        ).all()
    )
    converted = session.execute(
        text(
            """
            SELECT count(*) FROM segment_push_recipients r
            WHERE r.push_id = :push AND r.status = 'sent' AND EXISTS (
                SELECT 1 FROM orders o
                WHERE o.user_id = r.user_id AND o.merchant_id = :merchant
                  AND o.paid_at >= r.sent_at
                  AND o.paid_at < r.sent_at + make_interval(days => :days)
            )
            """
        ),
        {"push": push_id, "merchant": merchant_id, "days": push.conversion_days},
    ).scalar_one()
    return PushStats(
        push=push,
        sent=counts.get("sent", 0),
        rate_limited=counts.get("rate_limited", 0),
        skipped=counts.get("skipped", 0),
        converted=int(converted),
    )


def recent(session: Session, merchant_id: str, limit: int = 20) -> list[PushStats]:
    ids = session.scalars(
        select(Push.id)
        .where(Push.merchant_id == merchant_id)
        .order_by(Push.created_at.desc())
        .limit(limit)
    )
    return [stats(session, merchant_id, i) for i in ids]


def schedule(
    session: Session,
    merchant_id: str,
    *,
    name: str,
    segment_id: str,
    kind: str,
    minute_of_day: int,
    coupon_template_id: str | None = None,
    message: str | None = None,
) -> ScheduledPush:
    """A daily push at a local time of day (e.g. 深夜食堂 at 21:00 = minute 1260)."""
    segments.get(session, merchant_id, segment_id)
    if not 0 <= minute_of_day < 1440:
        raise InvalidInputError("minute_of_day must be 0 to 1439", field="minute_of_day")
    if (kind == "coupon" and not coupon_template_id) or (kind == "message" and not message):
        raise InvalidInputError("a coupon push needs a template, a message push a message")
    if kind not in ("coupon", "message"):
        raise InvalidInputError("kind must be coupon or message", field="kind")
    row = ScheduledPush(
        merchant_id=merchant_id,
        name=name,
        segment_id=segment_id,
        kind=kind,
        minute_of_day=minute_of_day,
        coupon_template_id=coupon_template_id,
        message=message,
    )
    session.add(row)
    session.flush()
    return row
