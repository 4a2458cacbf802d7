"""Payment intents, payments (deduplicated by provider txn id), refunds and SimPay's ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow


class PaymentIntent(TimestampMixin, Base):
    __tablename__ = "payment_intents"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'succeeded', 'cancelled')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInt)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    checkout_url: Mapped[str] = mapped_column(String(500), default="")


class Payment(Base):
    """Money the provider says it took; the unique txn id makes duplicate webhooks no-ops."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "provider_txn_id"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(20))
    provider_txn_id: Mapped[str] = mapped_column(String(100))
    intent_id: Mapped[str | None] = mapped_column(
        ForeignKey("payment_intents.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInt)
    # applied: counted as the order's payment; refunding: arrived late or twice, refunded.
    disposition: Mapped[str] = mapped_column(String(12), default="applied")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(TimestampMixin, Base):
    """A refund we owe; retried until the provider confirms, keyed so it can never double.

    pending → succeeded (the provider paid it), or → failed after too many attempts; a failed
    one goes back to pending when ops retry it, or to resolved when ops paid it another way.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'resolved')", name="status_known"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Caller-chosen business key, e.g. "group-failed:{order}" or "late-payment:{txn}".
    key: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    payment_id: Mapped[str | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInt)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_refund_id: Mapped[str | None] = mapped_column(String(100))
    succeeded_at: Mapped[datetime | None]
    # Set when a person closed a failed refund outside the provider (bank transfer, cash).
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(String(500))


class SimPayRecord(Base):
    """SimPay's own books (it plays the external gateway); idempotency keys are honoured here."""

    __tablename__ = "simpay_ledger"
    __table_args__ = (UniqueConstraint("kind", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # charge | refund
    idempotency_key: Mapped[str] = mapped_column(String(200))
    intent_id: Mapped[str] = mapped_column(String(36))
    amount_cents: Mapped[int] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
