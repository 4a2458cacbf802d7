"""Ops alerts about refunds (failed for good, abnormal at the provider, paid twice)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.fulfilment.alerts import open_alert
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.payments.models import Refund


def refund_failed(session: Session, row: Refund) -> None:
    """One alert each time a refund fails for good (a retried one that fails again alerts again)."""
    open_alert(
        session,
        kind="refund_failed",
        severity="critical",
        locker_id=None,
        compartment_id=None,
        order_id=row.order_id,
        detail=(
            f"refund {row.id} of {row.amount_cents} cents via {row.provider} failed "
            f"{row.attempts} times; last error: {row.last_error}"
        ),
        next_step=(
            f"Look the refund up at {row.provider} (our refund id {row.id}); then POST "
            f"/api/v1/refunds/{row.id}/retry, or /resolve with a note if it was paid another way."
        ),
    )


def refund_alert_once(
    session: Session, row: Refund, kind: str, detail: str, next_step: str
) -> None:
    """Open a critical alert about this refund's order unless one of the kind is still open:
    providers repeat their notifications."""
    already = session.scalar(
        select(func.count()).where(
            OpsAlert.kind == kind,
            OpsAlert.order_id == row.order_id,
            OpsAlert.status != "resolved",
        )
    )
    if not already:
        open_alert(
            session,
            kind=kind,
            severity="critical",
            locker_id=None,
            compartment_id=None,
            order_id=row.order_id,
            detail=detail,
            next_step=next_step,
        )
