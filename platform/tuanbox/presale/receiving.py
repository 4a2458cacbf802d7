"""Receiving a pre-sale batch at a station hub: an EPCIS receiving event, then its orders move.

The purchase-order batch (the campaign's GTIN + lot) is counted in at one station's hub.
That is recorded in the batch's provenance (ObjectEvent, bizStep receiving, disposition
in_progress, read point and business location the hub as an SGLN under the operator's GLN)
and confirms the campaign's paid orders for that station, which then ship in its next
delivery wave. One receipt per campaign and station: receiving again answers the same one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from traceability import journey
from traceability.errors import IdentifierError
from traceability.settings import TraceSettings
from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Product, Sku
from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError
from tuanbox.groupbuy.domain import GroupStatus
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.lockers.models import Station
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.presale.models import PresaleReceipt
from tuanbox.presale.services import purchase_order
from tuanbox.settings import Settings


class UntraceableBatchError(ConflictError):
    code = "PRESALE_BATCH_UNTRACEABLE"


class ShortDeliveryError(ConflictError):
    code = "PRESALE_SHORT_DELIVERY"


@dataclass(frozen=True)
class Received:
    receipt: PresaleReceipt
    event_hash: str
    confirmed: list[str]
    replayed: bool


def hub_extension(station_id: str) -> str:
    """The GLN extension (AI 254, ≤ 20 characters) naming a station's hub."""
    if re.fullmatch(r"[A-Za-z0-9._-]{1,17}", station_id):
        return f"st.{station_id}"
    return "st." + hashlib.sha256(station_id.encode()).hexdigest()[:17]


def _waiting(session: Session, campaign_id: str, station_id: str) -> list[Order]:
    """The campaign's paid orders for this station whose group succeeded, locked, by id."""
    return list(
        session.scalars(
            select(Order)
            .join(Group, Group.id == Order.group_id)
            .where(
                Group.campaign_id == campaign_id,
                Group.status == GroupStatus.CONFIRMED.value,
                Order.station_id == station_id,
                Order.status == OrderStatus.PAID,
                Order.awaiting == Awaiting.RECEIVING,
            )
            .order_by(Order.id)
            .with_for_update(of=Order)
        )
    )


def receive(
    session: Session,
    campaign_id: str,
    *,
    station_id: str,
    qty: int,
    from_gln: str | None,
    actor: Actor,
    settings: Settings,
    trace: TraceSettings,
    now: datetime,
) -> Received:
    """Count a campaign's batch in at a station hub; confirm that station's orders."""
    campaign = session.get(Campaign, campaign_id, with_for_update=True)  # one receiver at a time
    if campaign is None:
        raise NotFoundError("campaign not found", field="campaign_id")
    purchase_order(session, campaign_id, now=now)  # a pre-sale whose demand is final
    station = session.get(Station, station_id)
    if station is None or (campaign.station_ids and station_id not in campaign.station_ids):
        raise NotFoundError("this campaign ships to no such station", field="station_id")
    existing = session.scalar(
        select(PresaleReceipt).where(
            PresaleReceipt.campaign_id == campaign_id, PresaleReceipt.station_id == station_id
        )
    )
    orders = _waiting(session, campaign_id, station_id)
    if existing is None:
        needed = sum(o.qty for o in orders)
        if qty < needed:
            raise ShortDeliveryError(
                f"{qty} units counted in, {needed} are owed to this station's orders: receive "
                "the batch when it is complete, or cancel orders it cannot fill first",
                owed=needed,
                counted=qty,
            )
        event_id, event_hash = _record_event(
            session, campaign, station, qty=qty, from_gln=from_gln, settings=settings,
            trace=trace, now=now,
        )  # fmt: skip
        existing = PresaleReceipt(
            campaign_id=campaign_id,
            station_id=station_id,
            qty=qty,
            received_at=now,
            received_by=actor.id,
            trace_event_id=event_id,
        )
        session.add(existing)
        session.flush()
        record(
            session,
            actor,
            "presale.received",
            "campaign",
            campaign_id,
            reason=f"batch received at station {station_id}",
            details={"station_id": station_id, "qty": qty, "orders": len(orders)},
        )
        replayed = False
    else:
        event_hash = _hash_of(session, existing.trace_event_id)
        replayed = True
    confirmed = []
    for order in orders:
        from tuanbox.orders.services import transition

        transition(
            session, order, OrderStatus.CONFIRMED, actor=actor,
            reason=f"pre-sale batch received at station {station_id}",
        )  # fmt: skip
        confirmed.append(order.id)
    return Received(existing, event_hash, confirmed, replayed)


def _record_event(
    session: Session,
    campaign: Campaign,
    station: Station,
    *,
    qty: int,
    from_gln: str | None,
    settings: Settings,
    trace: TraceSettings,
    now: datetime,
) -> tuple[str, str]:
    from tuanbox.trace.services import record_event

    gtin = session.scalar(
        select(Product.gtin)
        .join(Sku, Sku.product_id == Product.id)
        .where(Sku.id == campaign.sku_id)
    )
    if not gtin or not campaign.lot_code:
        raise UntraceableBatchError(
            "the batch has no GTIN + lot to record its receiving against: set the product's "
            "GTIN and the campaign's lot code first",
            gtin=gtin,
            lot_code=campaign.lot_code,
        )
    local = now.astimezone(ZoneInfo(station.timezone or settings.station_timezone))
    try:
        event = journey.receiving(
            journey.Batch(gtin, campaign.lot_code),
            when=local,
            at_gln=trace.operator_gln,
            at_extension=hub_extension(station.id),
            from_gln=from_gln,
            quantity=qty,
        )
    except IdentifierError as exc:
        raise InvalidInputError(exc.message, field=exc.field) from exc
    recorded = record_event(session, event.to_jsonld(), merchant_id=None, is_admin=True)
    return recorded.event.id, recorded.event.event_hash


def _hash_of(session: Session, event_id: str) -> str:
    from tuanbox.trace.models import TraceEvent

    return str(session.scalar(select(TraceEvent.event_hash).where(TraceEvent.id == event_id)))
