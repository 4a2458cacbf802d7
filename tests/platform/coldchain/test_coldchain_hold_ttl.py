"""A quality hold's revoke expires after the process's command TTL, not a default of the scan.

The beat task passes its TTL; any other caller (a CLI, a demo, a test) runs on a session that
carries its settings, and the scan takes the TTL from there, never from a constant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import decode_command
from firmware_sim.profiles import steady
from telemetry.influx import InfluxClient
from telemetry.settings import TelemetrySettings
from tests.platform.coldchain.fx import make_site, write_through_edge
from tuanbox.coldchain.services import scan
from tuanbox.db.engine import SettingsNotBoundError
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.settings import Settings

TTL = 77


def _warm_compartment(
    session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path,
) -> tuple[str, datetime]:  # fmt: skip
    site = make_site(session, settings)
    session.commit()
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    # 15 °C in chilled 0-1 is over the hard limit at the first reading.
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, base, 3,
                       sensors=[("0-1", "chilled", "p1", lambda s: steady(15.0, s))])  # fmt: skip
    return site.locker_id, base + timedelta(minutes=5)


def test_the_hold_revoke_expires_after_the_sessions_command_ttl(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    configured = settings.model_copy(update={"command_ttl_s": TTL})
    locker_id, at = _warm_compartment(db_session, configured, telemetry, influx_url, tmp_path)
    with InfluxClient.from_settings(telemetry) as influx:
        report = scan(db_session, influx, telemetry, now=at)  # no TTL passed: the session's
    db_session.commit()
    assert report.held_orders, report
    rows = db_session.scalars(
        select(OutboxCommand).where(OutboxCommand.locker_id == locker_id,
                                    OutboxCommand.type == "revoke")
    ).all()  # fmt: skip
    assert len(rows) == 1
    command = decode_command(rows[0].body.encode())
    assert command.expires_at - command.issued_at == timedelta(seconds=TTL)


def test_a_scan_that_holds_orders_on_a_session_without_settings_refuses(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, influx_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    locker_id, at = _warm_compartment(db_session, settings, telemetry, influx_url, tmp_path)
    db_session.info.clear()  # an entry point that forgot its settings
    with InfluxClient.from_settings(telemetry) as influx, pytest.raises(SettingsNotBoundError):
        scan(db_session, influx, telemetry, now=at)
    db_session.rollback()
    assert not db_session.scalars(
        select(OutboxCommand).where(OutboxCommand.locker_id == locker_id,
                                    OutboxCommand.type == "revoke")
    ).all()  # fmt: skip
