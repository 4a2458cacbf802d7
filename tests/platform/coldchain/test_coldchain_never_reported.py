"""A chilled or frozen compartment that never reports is alerted silent once, then resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from firmware_sim.profiles import steady
from telemetry.influx import InfluxClient
from telemetry.settings import TelemetrySettings
from tests.platform.coldchain.fx import make_site, write_through_edge
from tuanbox.coldchain.services import SILENCE_KIND, scan
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Compartment
from tuanbox.settings import Settings


def test_a_compartment_that_never_reported_is_alerted_once_and_resolved_by_a_reading(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    site = make_site(db_session, settings)
    db_session.commit()
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Chilled 0-1 and 0-2 report every minute; frozen 0-3 has no sensor wired yet.
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, base, 30,
                       sensors=[("0-1", "chilled", "p1", lambda s: steady(3.0, s)),
                                ("0-2", "chilled", "p2", lambda s: steady(3.5, s))])  # fmt: skip
    limit = settings.coldchain_silence_minutes

    def run(minute: float) -> list[str]:
        with InfluxClient.from_settings(telemetry) as influx:
            report = scan(db_session, influx, telemetry, now=base + timedelta(minutes=minute),
                          never_reported_after_min=limit)  # fmt: skip
        db_session.commit()
        return report.silent

    def alerts() -> list[tuple[str, int | None, str]]:
        rows = db_session.scalars(
            select(OpsAlert).where(OpsAlert.kind == SILENCE_KIND,
                                   OpsAlert.locker_id == site.locker_id).order_by(OpsAlert.id)
        ).all()  # fmt: skip
        return [(a.kind, a.compartment_id, a.status) for a in rows]

    assert run(limit - 2) == []
    assert run(limit + 1) == [f"{site.locker_id}/0-3"]
    frozen = db_session.scalars(
        select(Compartment.id).where(Compartment.locker_id == site.locker_id,
                                     Compartment.board == 0, Compartment.lock == 3)
    ).one()  # fmt: skip
    assert alerts() == [(SILENCE_KIND, frozen, "open")]
    assert run(limit + 3) == []  # once only
    assert alerts() == [(SILENCE_KIND, frozen, "open")]

    # The probe is wired: its first readings resolve the alert, and nothing new is raised.
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id,
                       base + timedelta(minutes=limit + 4), 2,
                       sensors=[("0-3", "frozen", "p3", lambda s: steady(-19.0, s))])  # fmt: skip
    assert run(limit + 6) == []
    assert alerts() == [(SILENCE_KIND, frozen, "resolved")]
