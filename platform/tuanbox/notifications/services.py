"""Notification ports, their adapters, and the one place that picks adapters from settings.

    SmsSender  texts a phone          GatewaySmsSender (production) | InboxSmsSender (dev, test)
    Notifier   tells a known user     GatewayNotifier  (production) | InboxNotifier  (dev, test)

`get_sms_sender(settings)` and `get_notifier(settings)` choose by `settings.sms_backend`
(the settings refuse `inbox` in production). Every adapter writes its row through
`records.record`, so codes are never stored in clear; none logs a payload, a code or a number.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
from sqlalchemy.orm import Session

from tuanbox.crypto import PiiCipher
from tuanbox.notifications.gateway import GatewayConfig, SmsGateway
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import has_secrets, record
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.notifications")


class SmsSender(Protocol):
    """Texts a phone number (kept out of our tables: only its blind index is)."""

    def send(
        self,
        session: Session,
        phone: str,
        phone_hash: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification:
        """Text one message and add its `notifications` row to the session.

        `key` (an outbox row's unique key) asks for at most once: a gateway that may have
        sent the text is not asked again (see `tuanbox.notifications.gateway`)."""
        ...


class Notifier(Protocol):
    """Tells a known user something; codes in the payload reach only that user."""

    def notify(
        self,
        session: Session,
        user_id: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification: ...


def _refuse_in_production(settings: Settings, what: str) -> None:
    if settings.env == "production":
        raise ValueError(f"{what} keeps codes on this machine and is refused in production")


def template_params(payload: Mapping[str, Any]) -> dict[str, str]:
    """Gateway templates take flat string parameters; lists and empty values are left out."""
    return {k: str(v) for k, v in payload.items() if isinstance(v, str | int | float) and v != ""}


class InboxSmsSender:
    """Development and test: nothing leaves the machine; the code waits in /dev/inbox."""

    def __init__(self, settings: Settings) -> None:
        _refuse_in_production(settings, "the development SMS inbox")
        self.cipher = PiiCipher(settings)

    def send(
        self,
        session: Session,
        phone: str,
        phone_hash: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification:
        row = record(
            session,
            channel="sms",
            template=template,
            payload=payload,
            recipient_hash=phone_hash,
            cipher=self.cipher,
            private={"to": phone},
        )
        log.info("sms put in the development inbox", extra={"template": template})
        return row


class GatewaySmsSender:
    """Production: the text goes to the SMS gateway; our row keeps its message id, no code."""

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    def send(
        self,
        session: Session,
        phone: str,
        phone_hash: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification:
        message_id = self.gateway.send(phone, template, template_params(payload), key=key)
        log.info("sms sent", extra={"template": template, "message_id": message_id})
        return record(
            session,
            channel="sms",
            template=template,
            payload=payload,
            recipient_hash=phone_hash,
            extra={"message_id": message_id},
        )


class InboxNotifier:
    """Development and test: the notice is a row; its codes are kept for /dev/inbox."""

    def __init__(self, settings: Settings) -> None:
        _refuse_in_production(settings, "the development notice inbox")
        self.cipher = PiiCipher(settings)

    def notify(
        self,
        session: Session,
        user_id: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification:
        row = record(
            session,
            channel="app",
            template=template,
            payload=payload,
            user_id=user_id,
            cipher=self.cipher,
        )
        log.info("notify %s user=%s", template, user_id)
        return row


class GatewayNotifier:
    """Production: the notice is a row without codes; templates with a gateway template
    (TUANBOX_SMS_TEMPLATES, always `pickup_ready`) are also texted to the user's phone,
    which is how a code reaches the shopper.

    The text is queued in the caller's transaction (`tuanbox.notifications.outbox`) and the
    worker sends it after the commit, with retries; `key` makes it once per key (e.g. per
    order and pickup), a fresh one each call without it."""

    def __init__(self, settings: Settings, sms: SmsSender) -> None:
        self.settings = settings
        self.sms = sms

    def notify(
        self,
        session: Session,
        user_id: str,
        template: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> Notification:
        row = record(session, channel="app", template=template, payload=payload, user_id=user_id)
        log.info("notify %s user=%s", template, user_id)
        if template not in self.settings.sms_templates:
            if has_secrets(payload):
                log.warning(
                    "a notice with a code has no SMS template", extra={"template": template}
                )
            return row
        from tuanbox.accounts.models import User  # accounts imports this module
        from tuanbox.notifications import outbox

        user = session.get(User, user_id)
        if user is None or not user.phone_enc or not user.phone_hash:
            log.warning("no phone to text a notice to", extra={"template": template})
            return row
        # Nothing leaves inside the caller's transaction: the worker texts after the commit
        # (a rollback takes the text away with the state change that caused it).
        outbox.enqueue(
            session,
            key=key or f"{template}:{uuid.uuid4()}",
            user_id=user_id,
            template=template,
            payload=payload,
            settings=self.settings,
        )
        return row


def get_sms_sender(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> SmsSender:
    """The SMS sender these settings ask for; `transport` lets tests reach a fake gateway."""
    if settings.sms_backend == "gateway":
        return GatewaySmsSender(
            SmsGateway(GatewayConfig.from_settings(settings), transport=transport)
        )
    if settings.sms_backend == "inbox":
        return InboxSmsSender(settings)
    raise ValueError(f"unknown TUANBOX_SMS_BACKEND {settings.sms_backend!r}")


def get_notifier(settings: Settings, *, sms: SmsSender | None = None) -> Notifier:
    """The notifier these settings ask for (texts through `sms`, or the configured sender)."""
    if settings.sms_backend == "gateway":
        return GatewayNotifier(settings, sms or get_sms_sender(settings))
    if settings.sms_backend == "inbox":
        return InboxNotifier(settings)
    raise ValueError(f"unknown TUANBOX_SMS_BACKEND {settings.sms_backend!r}")


def notify(
    session: Session,
    user_id: str,
    template: str,
    payload: Mapping[str, Any],
    *,
    settings: Settings | None = None,
    notifier: Notifier | None = None,
    key: str | None = None,
) -> Notification:
    """Tell a user something; commits with the caller's transaction.

    Hooks that cannot see the process's settings may send notices without codes: those are
    recorded the same way everywhere. A notice carrying a code needs `settings` (or a
    `notifier`) to reach the user, and is refused without them rather than guessed at.
    `key` names the notice for the text it may cause: one text per key (see `GatewayNotifier`).
    """
    if notifier is None and settings is not None:
        notifier = get_notifier(settings)
    if notifier is not None:
        return notifier.notify(session, user_id, template, payload, key=key)
    if has_secrets(payload):
        raise RuntimeError(
            f"notice {template!r} carries a code: pass the process's settings so it is delivered"
        )
    row = record(session, channel="app", template=template, payload=payload, user_id=user_id)
    log.info("notify %s user=%s", template, user_id)
    return row
