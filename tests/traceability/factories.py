"""Test data: a demo batch's whole journey as EPCIS events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from traceability import journey
from traceability.journey import Batch, TemperatureSummary

SHANGHAI = timezone(timedelta(hours=8))
FARM_GLN = "6901234000009"
HUB_GLN = "6901234000016"
LOCKER_GLN = "6901234000023"
GTIN = "06901234567892"
LOT = "PEACH-2611"


def batch() -> Batch:
    return Batch(GTIN, LOT)


def journey_events(start: datetime | None = None) -> list[dict[str, Any]]:
    """Farm → hub → locker → shopper for the demo peach batch, as stored JSON-LD."""
    t0 = start or datetime(2026, 11, 28, 6, 0, tzinfo=SHANGHAI)
    b = batch()
    events = [
        journey.commissioning(
            b,
            when=t0,
            farm_gln=FARM_GLN,
            quantity=120.5,
            uom="KGM",
            harvest_start=date(2026, 11, 27),
            harvest_end=date(2026, 11, 28),
            farm_name="Fenghua Honey Peach Cooperative",
            certifications=["GB/T 19630 organic", "GlobalG.A.P."],
            country="CN",
        ),
        journey.shipping(b, when=t0 + timedelta(hours=3), from_gln=FARM_GLN, to_gln=HUB_GLN),
        journey.receiving(b, when=t0 + timedelta(hours=6), at_gln=HUB_GLN, from_gln=FARM_GLN),
        journey.storing(
            b,
            when=t0 + timedelta(hours=9),
            locker_gln=LOCKER_GLN,
            compartment="C07",
            temperature=TemperatureSummary(
                start=t0 + timedelta(hours=9),
                end=t0 + timedelta(hours=20),
                minimum=2.1,
                maximum=4.6,
                mean=3.2,
                mkt=3.4,
                samples=132,
            ),
        ),
        journey.pickup(b, when=t0 + timedelta(hours=20), locker_gln=LOCKER_GLN, compartment="C07"),
    ]
    return [e.to_jsonld() for e in events]


NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
