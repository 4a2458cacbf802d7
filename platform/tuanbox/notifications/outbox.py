"""Durable texts: queued inside the deciding transaction, sent by the worker after commit.

`enqueue` adds an `sms_outbox` row in the caller's transaction (nothing goes out yet), at most
one per key. `deliver_due` (Celery `notifications.deliver_sms`, every 10 s) takes due rows one
at a time, each in its own transaction holding the row's lock (`FOR UPDATE SKIP LOCKED`, so
two workers never send the same row), texts it through the configured `SmsSender` (which
writes the `notifications` row), and marks it sent in that same transaction. A gateway that
does not answer leaves the row pending with a doubled pause (`TUANBOX_SMS_OUTBOX_*`); a refusal
that will not change (number rejected, template refused, no phone) fails it at once. A text
given up opens (or counts into) one ops alert per template and error (`sms_failed`).

Exactly once per key, with one window left: a worker that dies after the gateway accepted a
text and before its transaction commits sends it again on the next round (the gateway has no
idempotency key); a crash anywhere else neither loses nor repeats a text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.db.base import utcnow
from tuanbox.notifications.errors import (
    SmsError,
    SmsGatewayRefusedError,
    SmsNumberRejectedError,
)
from tuanbox.notifications.models import SmsOutbox
from tuanbox.settings import Settings

if TYPE_CHECKING:
    from tuanbox.notifications.services import SmsSender

log = logging.getLogger("tuanbox.notifications.outbox")

# Errors that another attempt will not fix.
PERMANENT: tuple[type[Exception], ...] = (SmsNumberRejectedError, SmsGatewayRefusedError)


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


def deliver_one(
    session: Session, row: SmsOutbox, *, settings: Settings, sms: Any, now: datetime
) -> bool:
    """Send one locked pending row; True when the text went out."""
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
        notification = sms.send(session, phone, user.phone_hash, row.template, payload)
    except PiiDecryptError as exc:
        _give_up(session, row, exc.code)
        return False
    except PERMANENT as exc:
        _give_up(session, row, exc.code)  # type: ignore[attr-defined]
        return False
    except SmsError as exc:
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
    row.state, row.sent_at, row.payload_enc, row.last_error = "sent", now, None, None
    row.notification_id = notification.id
    return True


def deliver_due(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    sms: SmsSender | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Send up to `limit` due texts, each in its own transaction; return how many went out."""
    from tuanbox.notifications.services import get_sms_sender

    sender = sms if sms is not None else get_sms_sender(settings)
    sent = 0
    for _ in range(limit):
        moment = now or utcnow()
        with factory() as session:
            row = session.scalars(
                select(SmsOutbox)
                .where(SmsOutbox.state == "pending", SmsOutbox.next_attempt_at <= moment)
                .order_by(SmsOutbox.next_attempt_at, SmsOutbox.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                break
            sent += deliver_one(session, row, settings=settings, sms=sender, now=moment)
            session.commit()
    return sent
