"""The wave plan of one station for one merchant: what to pack for which locker door.

A confirmed order ships in its station's next delivery wave (`tuanbox.fulfilment.waves`);
its compartment is booked when the wave is allocated, shortly before the courier leaves.
The plan lists the merchant's orders of the next wave that has not departed: those already
booked under their locker and door (a door never mixes merchants), the others still
waiting for allocation, and the totals per SKU to pick from stock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Product, Sku
from tuanbox.errors import NotFoundError
from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
from tuanbox.lockers.models import Compartment, Station
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order

# Orders of a wave the merchant still packs: confirmed, booked, or held for a quality check.
PACKING = (OrderStatus.CONFIRMED, OrderStatus.ALLOCATED, OrderStatus.QUALITY_HOLD)


@dataclass(frozen=True)
class PackLine:
    order_id: str
    product: str
    sku: str
    qty: int
    zone: str
    status: str


@dataclass
class Door:
    locker_id: str
    compartment: str
    size: str
    zone: str
    lines: list[PackLine] = field(default_factory=list)


@dataclass(frozen=True)
class PickTotal:
    sku_id: str
    product: str
    sku: str
    qty: int
    orders: int


@dataclass
class WavePlan:
    station: Station
    wave: DeliveryWave | None
    doors: list[Door]
    unallocated: list[PackLine]
    totals: list[PickTotal]

    @property
    def orders(self) -> int:
        return sum(len(d.lines) for d in self.doors) + len(self.unallocated)


def next_wave(
    session: Session, merchant_id: str, station_id: str, *, now: datetime
) -> DeliveryWave | None:
    """The station's earliest wave not yet departed that holds this merchant's orders."""
    return session.scalars(
        select(DeliveryWave)
        .join(Order, Order.wave_id == DeliveryWave.id)
        .where(
            DeliveryWave.station_id == station_id,
            DeliveryWave.departs_at > now,
            Order.merchant_id == merchant_id,
            Order.status.in_(PACKING),
        )
        .order_by(DeliveryWave.departs_at)
        .limit(1)
    ).first()


def plan(
    session: Session,
    merchant_id: str,
    station_id: str,
    *,
    now: datetime,
    wave_id: str | None = None,
) -> WavePlan:
    station = session.get(Station, station_id)
    if station is None:
        raise NotFoundError("no such station", field="station_id")
    if wave_id is not None:
        wave = session.get(DeliveryWave, wave_id)
        if wave is None or wave.station_id != station_id:
            raise NotFoundError("no such wave at this station", field="wave_id")
    else:
        wave = next_wave(session, merchant_id, station_id, now=now)
    if wave is None:
        return WavePlan(station, None, [], [], [])
    rows = session.execute(
        select(Order, Product.name, Sku.name, Product.zone, Booking, Compartment)
        .join(Sku, Sku.id == Order.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .outerjoin(FulfilmentOrder, FulfilmentOrder.order_id == Order.id)
        .outerjoin(Booking, Booking.id == FulfilmentOrder.booking_id)
        .outerjoin(Compartment, Compartment.id == Booking.compartment_id)
        .where(
            Order.wave_id == wave.id,
            Order.merchant_id == merchant_id,
            Order.status.in_(PACKING),
        )
        .order_by(Booking.locker_id, Compartment.board, Compartment.lock, Order.id)
    ).all()
    doors: dict[tuple[str, str], Door] = {}
    unallocated: list[PackLine] = []
    qty: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    names: dict[str, tuple[str, str]] = {}
    for order, product, sku, zone, booking, comp in rows:
        line = PackLine(order.id, product, sku, order.qty, zone, order.status)
        if booking is not None and comp is not None:
            key = (booking.locker_id, comp.label)
            door = doors.get(key)
            if door is None:
                door = doors[key] = Door(booking.locker_id, comp.label, comp.size, comp.zone)
            door.lines.append(line)
        else:
            unallocated.append(line)
        names[order.sku_id] = (product, sku)
        qty[order.sku_id] += order.qty
        count[order.sku_id] += 1
    picks = [
        PickTotal(sku_id, *names[sku_id], qty[sku_id], count[sku_id])
        for sku_id in sorted(names, key=lambda i: names[i])
    ]
    return WavePlan(station, wave, list(doors.values()), unallocated, picks)


def stations_with_waves(session: Session, merchant_id: str, *, now: datetime) -> list[Station]:
    """Stations where this merchant has orders in a wave not yet departed."""
    return list(
        session.scalars(
            select(Station)
            .where(
                Station.id.in_(
                    select(DeliveryWave.station_id)
                    .join(Order, Order.wave_id == DeliveryWave.id)
                    .where(
                        DeliveryWave.departs_at > now,
                        Order.merchant_id == merchant_id,
                        Order.status.in_(PACKING),
                    )
                )
            )
            .order_by(Station.name, Station.id)
        )
    )
