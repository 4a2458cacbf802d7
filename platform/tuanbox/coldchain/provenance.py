"""The port through which an excursion becomes a sensor event in each affected batch's history.

The scan calls ``ProvenanceSink.excursion`` for the orders an episode put on hold and keeps
what it returns on the episode (``coldchain_episodes.provenance``). The Celery task uses the
trace store's ``tuanbox.trace.provenance.TraceProvenance`` (an EPCIS ``sensor_reporting``
event per affected lot, anchored with the rest); :class:`EpisodeProvenance` is the fallback
for callers without a trace store: it returns the description of the event (lot,
compartment, rule, interval, peak) so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.coldchain.models import Episode


class ProvenanceSink(Protocol):
    def excursion(
        self, session: Session, episode: Episode, order_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Record the excursion for these orders' batches; return what was recorded."""
        ...


def lots_of(session: Session, order_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(gtin, lot code) of the lots of each order's product, newest first."""
    from tuanbox.catalog.models import Lot, Sku
    from tuanbox.orders.models import Order

    out: dict[str, list[tuple[str, str]]] = {}
    if not order_ids:
        return out
    rows = session.execute(
        select(Order.id, Lot.gtin, Lot.lot_code)
        .join(Sku, Sku.id == Order.sku_id)
        .join(Lot, Lot.product_id == Sku.product_id)
        .where(Order.id.in_(list(order_ids)))
        .order_by(Lot.created_at.desc())
    ).all()
    for order_id, gtin, lot_code in rows:
        out.setdefault(order_id, []).append((gtin, lot_code))
    return out


class EpisodeProvenance:
    """Describes the sensor event per order; the scan keeps it on the episode."""

    def excursion(
        self, session: Session, episode: Episode, order_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        lots = lots_of(session, order_ids)
        records = [
            {
                "type": "sensor_excursion",
                "order_id": order_id,
                # The newest lot of the order's product: orders do not name their lot yet.
                "lot": list(lots[order_id][0]) if lots.get(order_id) else None,
                "locker_id": episode.locker_id,
                "compartment": episode.compartment,
                "rule": episode.rule,
                "since": episode.started_at.isoformat(),
                "when": episode.raised_at.isoformat(),
                "peak_celsius": episode.peak_c,
            }
            for order_id in order_ids
        ]
        return records
