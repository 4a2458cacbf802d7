"""Cold-chain excursions as EPCIS sensor events in each affected lot's trace history.

``TraceProvenance`` is the trace store's implementation of ``tuanbox.coldchain``'s
``ProvenanceSink``: one ``sensor_reporting`` event (ALARM_CONDITION) per affected lot, read
point the compartment as an SGLN under the operator's GLN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from traceability import journey
from traceability.settings import TraceSettings
from tuanbox.coldchain.models import Episode
from tuanbox.coldchain.provenance import lots_of
from tuanbox.trace.services import record_event


def compartment_extension(locker_id: str, compartment: str) -> str:
    """GLN extension (AI 254, ≤ 20 chars) naming a locker compartment."""
    text = re.sub(r"[^A-Za-z0-9._-]", "-", f"{locker_id}.{compartment}")
    return text[-20:]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TraceProvenance:
    """Records an excursion in the trace store (caller commits, with the episode)."""

    def __init__(self, trace: TraceSettings) -> None:
        self.trace = trace

    def excursion(
        self, session: Session, episode: Episode, order_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        affected: dict[tuple[str, str], list[str]] = {}
        for order_id, lots in lots_of(session, order_ids).items():
            if lots:
                affected.setdefault(lots[0], []).append(order_id)
        records = []
        for (gtin, lot), orders in sorted(affected.items()):
            event = journey.excursion(
                journey.Batch(gtin, lot),
                when=_aware(episode.raised_at),
                locker_gln=self.trace.operator_gln,
                compartment=compartment_extension(episode.locker_id, episode.compartment),
                celsius=episode.peak_c,
                since=_aware(episode.started_at),
                rule=episode.rule,
            )
            recorded = record_event(session, event.to_jsonld(), merchant_id=None, is_admin=True)
            records.append(
                {
                    "type": "sensor_excursion",
                    "trace_event_id": recorded.event.id,
                    "event_hash": recorded.event.event_hash,
                    "lot": [gtin, lot],
                    "order_ids": orders,
                }
            )
        return records
