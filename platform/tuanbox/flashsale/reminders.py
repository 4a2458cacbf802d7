"""A shopper's "remind me" for an upcoming flash sale: ask, cancel, and the sweep that tells."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tuanbox.errors import ConflictError, NotFoundError
from tuanbox.flashsale.models import FlashSale, Reminder
from tuanbox.groupbuy.services import as_utc, insert_for
from tuanbox.notifications.services import Notifier

TEMPLATE = "flash_sale_reminder"
# Rows told per transaction: a popular sale's reminders commit in bounded batches.
BATCH = 500


class SaleStartedError(ConflictError):
    code = "SALE_STARTED"


def _upcoming(session: Session, sale_id: str, now: datetime) -> FlashSale:
    sale = session.get(FlashSale, sale_id)
    if sale is None:
        raise NotFoundError("no such flash sale")
    if sale.closed_at is not None or as_utc(sale.starts_at) <= now:
        raise SaleStartedError("this sale has already started")
    return sale


def ask(session: Session, sale_id: str, user_id: str, *, now: datetime) -> None:
    """Remember to tell the shopper before the sale starts; asking again changes nothing."""
    _upcoming(session, sale_id, now)
    session.execute(
        insert_for(session)(Reminder)
        .values(sale_id=sale_id, user_id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["sale_id", "user_id"])
    )


def cancel(session: Session, sale_id: str, user_id: str) -> None:
    """Forget the shopper's reminder (none, or already sent: nothing to do)."""
    session.execute(
        delete(Reminder).where(
            Reminder.sale_id == sale_id, Reminder.user_id == user_id, Reminder.sent_at.is_(None)
        )
    )


def is_asked(session: Session, sale_id: str, user_id: str) -> bool:
    return session.get(Reminder, (sale_id, user_id)) is not None


def send_due(session: Session, notifier: Notifier, *, now: datetime, before_min: int) -> int:
    """Tell one batch of shoppers whose sale starts within ``before_min`` minutes.

    Each row is claimed by a guarded UPDATE (``sent_at IS NULL``) in the transaction that
    records its notice: a concurrent sweep skips rows locked by another (PostgreSQL) or finds
    them claimed, so a row is told once. A sale that has started is not announced."""
    due = session.execute(
        select(Reminder.sale_id, Reminder.user_id, FlashSale.title, FlashSale.starts_at)
        .join(FlashSale, FlashSale.id == Reminder.sale_id)
        .where(
            Reminder.sent_at.is_(None),
            FlashSale.closed_at.is_(None),
            FlashSale.starts_at > now,
            FlashSale.starts_at <= now + timedelta(minutes=before_min),
        )
        .order_by(FlashSale.starts_at)
        .limit(BATCH)
        .with_for_update(of=Reminder, skip_locked=True)
    ).all()
    told = 0
    for sale_id, user_id, title, starts_at in due:
        claimed = session.execute(
            update(Reminder)
            .where(
                Reminder.sale_id == sale_id,
                Reminder.user_id == user_id,
                Reminder.sent_at.is_(None),
            )
            .values(sent_at=now)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        notifier.notify(
            session,
            user_id,
            TEMPLATE,
            {"sale_id": sale_id, "title": title, "starts_at": as_utc(starts_at).isoformat()},
        )
        told += 1
    session.flush()
    return told
