"""Cold-chain figures of a held order's stay in its compartment, for the ops decision.

Deposit to now (or to the booking's close): min, max, mean, mean kinetic temperature and the
time outside the zone's target range, from the raw readings in InfluxDB. The same figures
feed a batch's EPCIS ``storing`` event (traceability.journey.TemperatureSummary).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from telemetry.influx import InfluxClient
from telemetry.queries import Leg, batch_summary
from telemetry.rules import DEFAULT_RULES, ZoneRules
from telemetry.schema import to_ns
from telemetry.stats import Summary
from tuanbox.coldchain.models import Episode, QualityHold, aware

# Without a deposit time (a hold placed on data older than the booking row), look back this far.
FALLBACK_BEFORE_EPISODE = timedelta(hours=1)


def stay_summary(
    session: Session,
    influx: InfluxClient,
    hold: QualityHold,
    episode: Episode,
    now: datetime,
    rules: dict[str, ZoneRules] | None = None,
) -> Summary | None:
    from tuanbox.fulfilment.models import Booking

    booking = session.get(Booking, hold.booking_id) if hold.booking_id else None
    start = booking.deposited_at if booking and booking.deposited_at else None
    start = start or (episode.started_at - FALLBACK_BEFORE_EPISODE)
    end = booking.closed_at if booking and booking.closed_at else now
    zone = (rules or dict(DEFAULT_RULES)).get(episode.zone)
    leg = Leg(episode.locker_id, episode.compartment, to_ns(aware(start)), to_ns(aware(end)) + 1)
    return batch_summary(influx, [leg], low=zone.target_low if zone else None,
                         high=zone.target_high if zone else None)  # fmt: skip
