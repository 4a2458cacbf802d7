"""A compartment the scan has never seen is judged over the whole lookback window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from firmware_sim.profiles import compressor_failure, steady
from telemetry.influx import InfluxClient
from telemetry.schema import cold_chain_point
from telemetry.settings import TelemetrySettings
from tests.platform.coldchain.fx import make_site, run_scans
from tuanbox.coldchain.models import Episode
from tuanbox.settings import Settings


def _write(telemetry: TelemetrySettings, locker: str, t0: datetime, minutes: range, fn) -> None:  # type: ignore[no-untyped-def]
    points = [
        cold_chain_point(locker=locker, compartment="0-1", zone="chilled", sensor="28-1",
                         at=t0 + timedelta(minutes=m), celsius=fn(m * 60.0))
        for m in minutes
    ]  # fmt: skip
    with InfluxClient.from_settings(telemetry) as influx:
        influx.write(points, precision="s")


def test_a_new_locker_with_older_readings_than_the_last_scan_is_still_judged(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, t0: datetime
) -> None:
    """Locker A is scanned up to minute 120. Locker B then appears and forwards a buffer that
    starts at minute 60 with a compressor failure (above 8 °C from minute 81): B's excursion
    must be raised although its readings are older than everything A's state has seen."""
    a, b = make_site(db_session, settings), make_site(db_session, settings)
    _write(telemetry, a.locker_id, t0, range(0, 121), lambda s: steady(3.0, s))
    assert not any(r.raised for r in run_scans(db_session, telemetry, t0, range(120, 121)).values())

    _write(telemetry, b.locker_id, t0, range(60, 131),
           lambda s: compressor_failure(3.0, 60 * 60, 0.25, 10.0, s))  # fmt: skip
    (report,) = run_scans(db_session, telemetry, t0, range(130, 131)).values()
    (episode_id,) = report.raised
    episode = db_session.get(Episode, episode_id)
    assert episode is not None
    assert episode.locker_id == b.locker_id
    assert episode.started_at == t0 + timedelta(minutes=81)
