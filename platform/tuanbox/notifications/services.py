"""Notification ports and their development adapters, which record what would be sent."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tuanbox.notifications.models import Notification

log = logging.getLogger("tuanbox.notifications")


class SmsSender(Protocol):
    """Sends a text message to a phone number (kept out of our tables: only its hash is)."""

    def send(
        self, session: Session, phone: str, phone_hash: str, template: str, payload: dict[str, Any]
    ) -> None: ...


class Notifier(Protocol):
    """Tells a known user something (app push, SMS, whatever the adapter does)."""

    def notify(
        self, session: Session, user_id: str, template: str, payload: dict[str, Any]
    ) -> Notification: ...


class RecordingSmsSender:
    """Development SMS: the message is logged and recorded, nothing leaves the machine."""

    def send(
        self, session: Session, phone: str, phone_hash: str, template: str, payload: dict[str, Any]
    ) -> None:
        session.add(
            Notification(
                channel="sms", recipient_hash=phone_hash, template=template, payload=payload
            )
        )
        # The number is masked even in development logs.
        log.info("sms %s to ***%s: %s", template, phone[-4:], payload)


class RecordingNotifier:
    """Development notifier: records the notice as a row in the same transaction."""

    def notify(
        self, session: Session, user_id: str, template: str, payload: dict[str, Any]
    ) -> Notification:
        row = Notification(channel="app", user_id=user_id, template=template, payload=payload)
        session.add(row)
        log.info("notify %s user=%s", template, user_id)
        return row


def notify(
    session: Session,
    user_id: str,
    template: str,
    payload: dict[str, Any],
    *,
    notifier: Notifier | None = None,
) -> Notification:
    """Send (record) a notice to a user; commits with the caller's transaction."""
    return (notifier or RecordingNotifier()).notify(session, user_id, template, payload)
