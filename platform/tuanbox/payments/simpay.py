"""SimPay: a bundled gateway simulator with a hosted page, signed webhooks and refund keys.

It behaves like a real gateway where it matters to us: its books are committed on their own
(not inside our transaction), webhooks are HMAC-SHA256 signed with a timestamp, and refunds
carry an idempotency key that it honours, so retrying a refund never pays out twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tuanbox.payments.errors import ProviderError, WebhookPayloadError, WebhookSignatureError
from tuanbox.payments.models import SimPayRecord
from tuanbox.payments.provider import WebhookEvent
from tuanbox.settings import Settings

SIGNATURE_HEADER = "x-simpay-signature"
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PAYER = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _bounded(value: object) -> str:
    text = str(value)
    if not _ID.match(text):
        raise ValueError("id is not 1-64 letters, digits, _ or -")
    return text


def _payer(value: object) -> str | None:
    """The payer's account id if it is a sane one; an odd one is dropped, not fatal."""
    return value if isinstance(value, str) and _PAYER.match(value) else None


class SimPay:
    name = "sim"

    def __init__(self, settings: Settings, *, fail_refunds: int = 0) -> None:
        self._secret = settings.payment_webhook_secret.get_secret_value()
        self._base = settings.public_base_url.rstrip("/")
        # Failure injection: the next N refund calls fail as if the gateway were down.
        self.fail_refunds = fail_refunds
        self.failure_rate = settings.simpay_refund_failure_rate
        self.refund_calls = 0

    # -- the gateway side ---------------------------------------------------------------
    def create_checkout(
        self, session: Session, intent_id: str, amount_cents: int, *, payer_ip: str | None = None
    ) -> str:
        return f"{self._base}/pay/sim/{intent_id}"

    def charge(self, session: Session, intent_id: str, amount_cents: int) -> SimPayRecord:
        """The shopper confirmed on the hosted page; one charge per intent."""
        return self._book(session, "charge", intent_id, intent_id, amount_cents)

    def refund(self, session: Session, *, refund_id: str, intent_id: str, amount_cents: int) -> str:
        self.refund_calls += 1
        if self.fail_refunds > 0:
            self.fail_refunds -= 1
            raise ProviderError("SimPay: refund service temporarily unavailable")
        if self.failure_rate and random.random() < self.failure_rate:
            raise ProviderError("SimPay: refund timed out (simulated flakiness)")
        return self._book(session, "refund", refund_id, intent_id, amount_cents).id

    def refunds_for(self, session: Session, refund_id: str) -> list[SimPayRecord]:
        return list(
            session.scalars(
                select(SimPayRecord).where(
                    SimPayRecord.kind == "refund", SimPayRecord.idempotency_key == refund_id
                )
            )
        )

    def _book(
        self, session: Session, kind: str, key: str, intent_id: str, amount: int
    ) -> SimPayRecord:
        values = {
            "id": f"sp_{kind[:3]}_{secrets.token_hex(8)}",
            "kind": kind,
            "idempotency_key": key,
            "intent_id": intent_id,
            "amount_cents": amount,
            "details": {},
        }
        bind = session.get_bind()
        if isinstance(bind, Connection):
            # Single-connection tests: a SAVEPOINT stands in for the gateway's own commit.
            with session.begin_nested():
                self._insert(session, bind.dialect.name, values)
        else:
            with bind.connect() as conn, conn.begin():
                self._insert(conn, bind.dialect.name, values)
        record = session.scalars(
            select(SimPayRecord)
            .where(SimPayRecord.kind == kind, SimPayRecord.idempotency_key == key)
            .execution_options(populate_existing=True)
        ).one()
        if record.amount_cents != amount:
            raise ProviderError("SimPay: idempotency key reused with a different amount")
        return record

    @staticmethod
    def _insert(target: Session | Connection, dialect: str, values: dict[str, Any]) -> None:
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        target.execute(
            ins(SimPayRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["kind", "idempotency_key"])
        )

    def webhook(
        self, payload: dict[str, Any], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A signed webhook body and headers, as the gateway would POST them."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        return body, {
            SIGNATURE_HEADER: sign(self._secret, body, ts),
            "content-type": "application/json",
        }

    def payment_webhook(
        self, record: SimPayRecord, *, payer_id: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        data: dict[str, Any] = {
            "txn_id": record.id,
            "intent_id": record.intent_id,
            "amount_cents": record.amount_cents,
        }
        if payer_id is not None:
            data["payer_id"] = payer_id  # the shopper's account at the gateway
        return self.webhook({"id": f"evt_{record.id}", "type": "payment.succeeded", "data": data})

    def payment_failed_webhook(
        self, intent_id: str, *, reason: str = "card_declined"
    ) -> tuple[bytes, dict[str, str]]:
        """A declined attempt at paying the intent, as the gateway reports it."""
        attempt = f"sp_att_{secrets.token_hex(8)}"
        return self.webhook(
            {
                "id": f"evt_{attempt}",
                "type": "payment.failed",
                "data": {"intent_id": intent_id, "attempt_id": attempt, "reason": reason},
            }
        )

    # -- our side: receiving -------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        header = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError as exc:
            raise WebhookSignatureError("missing or malformed signature header") from exc
        expected = sign(self._secret, body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise WebhookSignatureError("webhook signature does not match")
        if abs(time.time() - timestamp) > TOLERANCE_S:
            raise WebhookSignatureError("webhook timestamp outside the tolerance (replay?)")
        try:
            doc = json.loads(body)
            data = doc["data"]
            kind = doc["type"]
            if kind == "payment.succeeded":
                amount = int(data["amount_cents"])
                if amount <= 0:
                    raise ValueError("amount must be positive")
                return WebhookEvent(
                    type=kind,
                    provider=self.name,
                    intent_id=str(data["intent_id"]),
                    txn_id=str(data["txn_id"]),
                    amount_cents=amount,
                    payer_id=_payer(data.get("payer_id")),
                    raw=doc,
                )
            if kind == "payment.failed":
                # A declined attempt (card refused, balance short): `attempt_id` is unique.
                return WebhookEvent(
                    type=kind,
                    provider=self.name,
                    intent_id=str(data["intent_id"])[:36],
                    txn_id=_bounded(data["attempt_id"]),
                    raw=doc,
                )
            if kind == "refund.succeeded":
                return WebhookEvent(
                    type=kind,
                    provider=self.name,
                    intent_id=str(data.get("intent_id", "")),
                    refund_id=str(data["refund_id"]),
                    provider_refund_id=str(data["provider_refund_id"]),
                    amount_cents=int(data["amount_cents"]),
                    raw=doc,
                )
            return WebhookEvent(type=str(kind), provider=self.name, raw=doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookPayloadError(f"webhook body not understood: {exc}") from exc
