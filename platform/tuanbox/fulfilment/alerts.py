"""Ops alerts: open one with a clear next step; acknowledge and resolve them (audited).

Reusable by every feature that needs a person to look at a locker (telemetry opens cold-chain
excursion alerts here too).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.db.base import utcnow
from tuanbox.fulfilment.errors import AlertNotFoundError, AlertStateError
from tuanbox.fulfilment.models import SEVERITIES, OpsAlert

# What ops should do first for each kind we raise; callers may pass their own.
NEXT_STEPS = {
    "door_left_open": "Call the station contact or send staff to close the door; check the item.",
    "unlock_failed": "Retry a remote open; if it fails again, send a technician (lock or board).",
    "pickup_rejected": "Check the shopper's QR/code; reissue the pickup code or open remotely.",
    "state_mismatch": "Inspect the compartment on site; correct the platform or empty the door.",
    "command_expired": "The locker never confirmed the command; check the locker and re-dispatch.",
    "command_rejected": "Read the locker's reason; fix the data and re-dispatch or reallocate.",
    "command_stalled": "The locker accepted but never finished the command: check its fresh "
    "state (a sync was sent), the door and the board; re-dispatch if it did not happen.",
    "seq_reused": "The locker's event counter went back (restored state?) or someone forged "
    "events: compare the dead letter in inbound_failures with the applied event, check the "
    "device and its credentials.",
    "inbound_rejected": "A locker sent a message the contract refuses (reason and payload in "
    "inbound_failures): check the agent version and the device.",
    "not_allocatable": "Split the order or pick another station with a large enough door.",
    "sms_failed": "Texts were given up (gateway refusing or down past the retries): check the "
    "SMS gateway's account, templates and balance; shoppers still see their codes on the order "
    "page. The key names the text (pickup:<order> and so on).",
    "tamper": "Send staff to the station; review the camera and the compartment.",
    "sensor_fault": "Check the sensor wiring; move chilled goods if the zone cannot be watched.",
}


def open_alert(
    session: Session,
    *,
    kind: str,
    locker_id: str | None,
    compartment_id: int | None,
    detail: str,
    next_step: str | None = None,
    order_id: str | None = None,
    severity: str = "warning",
) -> OpsAlert:
    """Open an alert in the caller's transaction."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    alert = OpsAlert(
        kind=kind,
        severity=severity,
        status="open",
        locker_id=locker_id,
        compartment_id=compartment_id,
        order_id=order_id,
        detail=detail[:1000],
        next_step=(next_step or NEXT_STEPS.get(kind, "Investigate and resolve."))[:500],
        opened_at=utcnow(),
    )
    session.add(alert)
    session.flush()
    return alert


def _get(session: Session, alert_id: int) -> OpsAlert:
    alert = session.get(OpsAlert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertNotFoundError(f"alert {alert_id} does not exist")
    return alert


def acknowledge(session: Session, alert_id: int, actor: Actor, note: str | None = None) -> OpsAlert:
    """Someone is on it; audited."""
    alert = _get(session, alert_id)
    if alert.status != "open":
        raise AlertStateError(f"alert {alert_id} is {alert.status}, not open")
    before = {"status": alert.status, "note": alert.note}
    alert.status = "acknowledged"
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = actor.id
    if note:
        alert.note = note[:1000]
    record(session, actor, "alert.acknowledge", "ops_alert", str(alert_id), reason=note,
           before=before, after={"status": alert.status, "note": alert.note})  # fmt: skip
    session.flush()
    return alert


def resolve(session: Session, alert_id: int, actor: Actor, note: str) -> OpsAlert:
    """Closed, with what was done; audited. Resolving needs a note, acknowledging does not."""
    alert = _get(session, alert_id)
    if alert.status == "resolved":
        raise AlertStateError(f"alert {alert_id} is already resolved")
    before = {"status": alert.status, "note": alert.note}
    alert.status = "resolved"
    alert.resolved_at = utcnow()
    alert.resolved_by = actor.id
    alert.note = note[:1000]
    record(session, actor, "alert.resolve", "ops_alert", str(alert_id), reason=note,
           before=before, after={"status": alert.status, "note": alert.note})  # fmt: skip
    session.flush()
    return alert


def list_alerts(
    session: Session, *, statuses: Sequence[str] = ("open", "acknowledged"), limit: int = 200
) -> list[OpsAlert]:
    return list(
        session.scalars(
            select(OpsAlert)
            .where(OpsAlert.status.in_(statuses))
            .order_by(OpsAlert.opened_at.desc(), OpsAlert.id.desc())
            .limit(limit)
        )
    )
