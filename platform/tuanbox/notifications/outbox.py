"""Durable texts: queued inside the deciding transaction, sent by the worker after commit.

`enqueue` adds an `sms_outbox` row in the caller's transaction (nothing goes out yet), at most
one per key. `deliver_due` (Celery `notifications.deliver_sms`, every 10 s) takes due rows one
at a time (`FOR UPDATE SKIP LOCKED`, so two workers never take the same row), commits the row
as *sending* (`last_error = SMS_SENDING`), texts it through the configured `SmsSender` with
the row's key (which writes the `notifications` row), and marks it sent in a second
transaction. A gateway that surely did not send (no connection, 5xx) leaves the row pending
with a doubled pause (`TUANBOX_SMS_OUTBOX_*`); a refusal that will not change (number
rejected, template refused, no phone) fails it at once. A text given up opens (or counts
into) one ops alert per template and error (`sms_failed`).

At most once per key. The gateway has no idempotency key (Aliyun SendSms does not dedupe, not
even by `OutId`), so the *sending* mark is committed before the call and a row marked sending
is never sent again: a worker that dies after the gateway accepted and before its commit
leaves the row pending/`SMS_SENDING`, which ops can see; once it is older than any send can
take, the next round fails it with `SMS_OUTCOME_UNKNOWN` and the ops alert (the text may or
may not have gone out; the shopper's QR code opens the compartment either way). An attempt
whose answer was lost (read timeout, reset) is failed the same way at once, not repeated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.db.base import utcnow
from tuanbox.notifications.errors import (
    SmsError,
    SmsGatewayRefusedError,
    SmsNumberRejectedError,
    SmsOutcomeUnknownError,
)
from tuanbox.notifications.models import SmsOutbox
from tuanbox.settings import Settings

if TYPE_CHECKING:
    from tuanbox.notifications.services import SmsSender

log = logging.getLogger("tuanbox.notifications.outbox")

# Errors that another attempt will not fix, or must not try (the text may have gone out).
PERMANENT: tuple[type[Exception], ...] = (
    SmsNumberRejectedError,
    SmsGatewayRefusedError,
    SmsOutcomeUnknownError,
)
# `last_error` of a pending row whose text is being handed to the gateway (committed before
# the call; `next_attempt_at` is then when the send began). Such a row is not due.
SENDING = "SMS_SENDING"
OUTCOME_UNKNOWN = SmsOutcomeUnknownError.code


def _context(key: str) -> str:
    return f"sms_outbox:{key}"


def enqueue(
    session: Session,
    *,
    key: str,
    user_id: str,
    template: str,
    payload: Mapping[str, Any],
    settings: Settings,
    now: datetime | None = None,
) -> bool:
    """Queue a text in the caller's transaction; False when `key` was already queued."""
    now = now or utcnow()
    sealed = PiiCipher(settings).encrypt(json.dumps(dict(payload)), context=_context(key))
    values = {
        "key": key,
        "user_id": user_id,
        "template": template,
        "payload_enc": sealed,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(SmsOutbox)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(SmsOutbox.id)
    )
    queued = session.execute(statement).scalar() is not None
    if not queued:
        log.info("text already queued", extra={"template": template})
    return queued


def _backoff(settings: Settings, attempts: int) -> timedelta:
    pause = settings.sms_outbox_backoff_s * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(pause, settings.sms_outbox_backoff_max_s))


def _give_up(session: Session, row: SmsOutbox, code: str) -> None:
    row.state, row.last_error, row.payload_enc = "failed", code, None
    log.warning("a queued text was given up", extra={"template": row.template, "code": code})
    _alert_given_up(session, row, code)


def _alert_given_up(session: Session, row: SmsOutbox, code: str) -> None:
    """Tell ops in the give-up's transaction: one open alert per template and error, counting
    the texts behind it, so a gateway down for an hour raises one alert, not thousands."""
    from tuanbox.fulfilment.alerts import open_alert
    from tuanbox.fulfilment.models import OpsAlert

    head = f"texts given up: template {row.template}, error {code}"
    alert = session.scalars(
        select(OpsAlert)
        .where(
            OpsAlert.kind == "sms_failed",
            OpsAlert.status != "resolved",
            OpsAlert.detail.startswith(head + ";", autoescape=True),
        )
        .order_by(OpsAlert.id)
        .limit(1)
        .with_for_update()
    ).first()
    if alert is None:
        open_alert(
            session, kind="sms_failed", locker_id=None, compartment_id=None,
            detail=f"{head}; 1 text, last key {row.key}",
        )  # fmt: skip
        return
    count = int(alert.detail.removeprefix(head + "; ").split(" ", 1)[0]) + 1
    alert.detail = f"{head}; {count} texts, last key {row.key}"[:1000]


def sending_stale_after(settings: Settings) -> timedelta:
    """How long a row may stay marked sending: longer than one send can take (each attempt's
    connect, write, read and pool timeouts, and the backoffs between attempts), so a row still
    sending after that was left by a worker that died mid-send."""
    worst = settings.sms_max_attempts * 4 * settings.sms_timeout_s
    worst += settings.sms_retry_backoff_s * 2 ** max(settings.sms_max_attempts - 1, 0)
    return timedelta(seconds=60 + 2 * worst)


def deliver_one(
    session: Session, row: SmsOutbox, *, settings: Settings, sms: Any, now: datetime
) -> bool:
    """Send one locked pending row; True when the text went out.

    Commits the *sending* mark before the gateway call (and so releases the row's lock); the
    caller commits the outcome."""
    from tuanbox.accounts.models import User  # accounts imports the notification services

    cipher = PiiCipher(settings)
    row.attempts += 1
    user = session.get(User, row.user_id)
    if user is None or not user.phone_enc or not user.phone_hash or row.payload_enc is None:
        _give_up(session, row, "NO_PHONE")
        return False
    try:
        payload = json.loads(cipher.decrypt(row.payload_enc, context=_context(row.key)))
        phone = cipher.decrypt(user.phone_enc, context="phone")
    except PiiDecryptError as exc:
        _give_up(session, row, exc.code)
        return False
    key, template, phone_hash = row.key, row.template, user.phone_hash
    # At most once: a crash from here on leaves this mark, and a marked row is not sent again.
    row.last_error, row.next_attempt_at = SENDING, now
    session.commit()
    try:
        notification = sms.send(session, phone, phone_hash, template, payload, key=key)
    except PERMANENT as exc:
        session.refresh(row, with_for_update=True)
        _give_up(session, row, exc.code)  # type: ignore[attr-defined]
        return False
    except SmsError as exc:  # the gateway surely did not send: no connection, 5xx
        session.refresh(row, with_for_update=True)
        row.last_error = exc.code
        if row.attempts >= settings.sms_outbox_max_attempts:
            _give_up(session, row, exc.code)
        else:
            row.next_attempt_at = now + _backoff(settings, row.attempts)
            log.warning(
                "a queued text will be retried",
                extra={"template": row.template, "code": exc.code, "attempts": row.attempts},
            )
        return False
    session.flush()
    session.refresh(row, with_for_update=True)
    row.state, row.sent_at, row.payload_enc, row.last_error = "sent", now, None, None
    row.notification_id = notification.id
    return True


def fail_stale_sending(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime, limit: int = 100
) -> int:
    """Fail rows left marked sending by a worker that died mid-send (`SMS_OUTCOME_UNKNOWN`,
    with the ops alert): their text may have gone out, so they are never sent again."""
    cutoff = now - sending_stale_after(settings)
    with factory() as session:
        rows = session.scalars(
            select(SmsOutbox)
            .where(
                SmsOutbox.state == "pending",
                SmsOutbox.last_error == SENDING,
                SmsOutbox.next_attempt_at <= cutoff,
            )
            .order_by(SmsOutbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            _give_up(session, row, OUTCOME_UNKNOWN)
        session.commit()
    return len(rows)


def deliver_due(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    sms: SmsSender | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Send up to `limit` due texts, each in its own transactions; return how many went out.

    First fails the rows a dead worker left marked sending (see `fail_stale_sending`)."""
    from tuanbox.notifications.services import get_sms_sender

    sender = sms if sms is not None else get_sms_sender(settings)
    fail_stale_sending(factory, settings, now=now or utcnow())
    sent = 0
    for _ in range(limit):
        moment = now or utcnow()
        with factory() as session:
            row = session.scalars(
                select(SmsOutbox)
                .where(
                    SmsOutbox.state == "pending",
                    SmsOutbox.next_attempt_at <= moment,
                    or_(SmsOutbox.last_error.is_(None), SmsOutbox.last_error != SENDING),
                )
                .order_by(SmsOutbox.next_attempt_at, SmsOutbox.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                break
            sent += deliver_one(session, row, settings=settings, sms=sender, now=moment)
            session.commit()
    return sent
