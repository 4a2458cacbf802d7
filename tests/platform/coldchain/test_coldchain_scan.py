"""The excursion scan end to end: edge writer → real InfluxDB → scan → holds, alerts, episodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import firmware_sim
from edge.protocol.envelopes import decode_command
from firmware_sim.profiles import compressor_failure
from firmware_sim.scenario import load_scenario
from telemetry.influx import InfluxClient
from telemetry.schema import cold_chain_point
from telemetry.settings import TelemetrySettings
from tests.platform.coldchain.fx import Site, make_site, run_scans, write_through_edge
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.coldchain import holds
from tuanbox.coldchain.errors import HoldDecidedError
from tuanbox.coldchain.models import Episode, QualityHold
from tuanbox.coldchain.services import EXCURSION_KIND, SILENCE_KIND
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Compartment
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.settings import Settings

OPS = Actor(id="ops-1", role="ops")


def _commands(session: Session, locker_id: str, kind: str) -> list[dict[str, object]]:
    rows = session.scalars(
        select(OutboxCommand).where(OutboxCommand.locker_id == locker_id,
                                    OutboxCommand.type == kind)
    ).all()  # fmt: skip
    return [decode_command(r.body.encode()).payload.model_dump() for r in rows]


def test_compressor_failure_raises_one_excursion_holds_the_right_order_and_clears(
    db_session: Session,
    settings: Settings,
    telemetry: TelemetrySettings,
    influx_url: str,
    tmp_path: Path,
    t0: datetime,
) -> None:
    site: Site = make_site(db_session, settings)
    sent = write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id,
                              t0, 180, silent_after={"0-2": 120})  # fmt: skip
    assert sent == 180 * 2 + 120

    reports = run_scans(db_session, telemetry, t0, range(5, 181, 5))

    raised = {m: r.raised for m, r in reports.items() if r.raised}
    # 0-1 is above 8 °C from minute 51 (8.25 °C); 15 minutes later, at minute 66, the
    # duration rule fires: the scan at minute 70 is the first to see that reading.
    assert list(raised) == [70]
    (episode_id,) = raised[70]
    episode = db_session.get(Episode, episode_id)
    assert episode is not None
    assert (episode.locker_id, episode.compartment, episode.rule) == (site.locker_id, "0-1",
                                                                      "duration")  # fmt: skip
    assert episode.raised_at == t0 + timedelta(minutes=66)
    assert episode.started_at == t0 + timedelta(minutes=51)
    # The proof: the readings from 30 minutes before the start up to the raise, all above
    # 8 °C since the start.
    ts = [t0 + timedelta(minutes=m) for m in range(21, 67)]
    assert [int(t.timestamp()) * 10**9 for t in ts] == [int(p[0]) for p in episode.evidence]
    assert all(c > 8 for t, c in episode.evidence if t >= episode.evidence[30][0])

    # Exactly the order in 0-1 is on hold, and its pickup is revoked at the locker.
    db_session.refresh(site.failing)
    db_session.refresh(site.healthy)
    assert site.failing.status == "quality_hold"
    assert site.healthy.status == "ready_for_pickup"
    assert episode.order_ids == [site.failing.id]
    revokes = _commands(db_session, site.locker_id, "revoke")
    assert revokes == [{"order_id": site.bookings["0-1"].ref, "compartment": "0-1",
                        "reason": "quality_hold"}]  # fmt: skip

    alert = db_session.get(OpsAlert, episode.alert_id)
    assert alert is not None
    comp = db_session.get(Compartment, alert.compartment_id)
    assert comp is not None
    assert (alert.kind, alert.severity, alert.status) == (EXCURSION_KIND, "critical", "open")
    assert (comp.locker_id, comp.label) == (site.locker_id, "0-1")
    assert alert.order_id == site.failing.id
    assert f"Excursion #{episode.id}" in alert.detail
    assert episode.provenance[0]["order_id"] == site.failing.id

    # Repaired at minute 90, ≤ 7 °C from minute 93, held 5 minutes: cleared at 98, seen by
    # the scan at 100. Nothing else is raised for 0-1, before or after.
    cleared = {m: r.cleared for m, r in reports.items() if r.cleared}
    assert cleared == {100: [episode_id]}
    db_session.refresh(episode)
    assert episode.status == "cleared"
    assert episode.cleared_at == t0 + timedelta(minutes=98)

    # 0-2 stopped reporting after minute 119: silent for more than 10 minutes at scan 130,
    # alerted once only.
    silent = {m: r.silent for m, r in reports.items() if r.silent}
    assert silent == {130: [f"{site.locker_id}/0-2"]}
    kinds = db_session.scalars(
        select(OpsAlert.kind).where(OpsAlert.locker_id == site.locker_id).order_by(OpsAlert.id)
    ).all()
    assert kinds == [EXCURSION_KIND, SILENCE_KIND]


def test_release_rearms_the_pickup_and_reject_refunds(
    db_session: Session,
    settings: Settings,
    telemetry: TelemetrySettings,
    influx_url: str,
    tmp_path: Path,
    t0: datetime,
) -> None:
    site = make_site(db_session, settings)
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, t0, 80)
    run_scans(db_session, telemetry, t0, range(10, 81, 10))
    (hold,) = db_session.scalars(select(QualityHold)).all()
    assert (hold.order_id, hold.status, hold.previous_status) == (
        site.failing.id, "held", "ready_for_pickup")  # fmt: skip

    released = holds.release(db_session, hold.id, OPS, "probe reading checked: goods at 4 °C",
                             settings=settings)  # fmt: skip
    assert released.status == "released"
    db_session.refresh(site.failing)
    assert site.failing.status == "ready_for_pickup"
    booking = site.bookings["0-1"]
    (armed,) = _commands(db_session, site.locker_id, "arm_pickup")[-1:]
    assert armed["token_id"] == booking.pickup_token_id
    assert armed["compartment"] == "0-1"
    with pytest.raises(HoldDecidedError) as decided:
        holds.reject(db_session, hold.id, OPS, "too late")
    assert decided.value.code == "HOLD_ALREADY_DECIDED"

    # A later excursion holds the order again; rejected this time: cancelled, refunded.
    first = db_session.get(Episode, hold.episode_id)
    assert first is not None
    episode = Episode(
        locker_id=first.locker_id,
        compartment="0-1",
        zone="chilled",
        rule="hard_limit",
        detail="13.0 °C",
        status="open",
        started_at=first.started_at,
        raised_at=first.raised_at,
        evidence=[],
        order_ids=[],
        provenance=[],
    )
    db_session.add(episode)
    db_session.flush()
    (again,) = holds.place_holds(db_session, episode, booking.compartment_id,
                                 now=datetime.now(UTC), command_ttl_s=600)  # fmt: skip
    assert again.order_id == site.failing.id
    second = db_session.scalars(select(QualityHold).where(QualityHold.status == "held")).one()
    holds.reject(db_session, second.id, OPS, "spoilt: 10 °C for 40 minutes")
    order = db_session.get(Order, site.failing.id)
    assert order is not None
    db_session.refresh(order)
    assert order.status == "cancelled"
    refunds = db_session.scalars(select(Refund).where(Refund.order_id == order.id)).all()
    assert [r.amount_cents for r in refunds] == [order.paid_cents]
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == order.id,
                                        AuditEntry.action.like("quality_hold.%"))
        .order_by(AuditEntry.id)
    ).all()  # fmt: skip
    assert actions == ["quality_hold.release", "quality_hold.reject"]


def test_an_excursion_during_an_outage_is_raised_from_the_backlog(
    db_session: Session, settings: Settings, telemetry: TelemetrySettings, t0: datetime
) -> None:
    """The locker is cut off from minute 30 to 200; when it comes back it forwards its buffer,
    which holds a compressor failure (above 8 °C from minute 81): raised at its sampling time,
    although that is far older than the scan's 90-minute window."""
    site = make_site(db_session, settings)

    def write(minutes: range) -> None:
        points = [
            cold_chain_point(locker=site.locker_id, compartment="0-1", zone="chilled",
                             sensor="28-1", at=t0 + timedelta(minutes=m),
                             celsius=compressor_failure(3.0, 60 * 60, 0.25, 10.0, m * 60.0))
            for m in minutes
        ]  # fmt: skip
        with InfluxClient.from_settings(telemetry) as influx:
            influx.write(points, precision="s")

    write(range(30))
    before = run_scans(db_session, telemetry, t0, range(10, 200, 10))
    assert [m for m, r in before.items() if r.silent] == [40]
    assert not any(r.raised for r in before.values())

    write(range(30, 200))
    (after,) = run_scans(db_session, telemetry, t0, range(200, 201)).values()
    (episode_id,) = after.raised
    episode = db_session.get(Episode, episode_id)
    assert episode is not None
    assert episode.started_at == t0 + timedelta(minutes=81)
    assert episode.raised_at == t0 + timedelta(minutes=96)
    assert after.held_orders == [site.failing.id]
    assert after.readings == 170


def test_the_simulators_compressor_failure_scenario_file(
    db_session: Session,
    settings: Settings,
    telemetry: TelemetrySettings,
    influx_url: str,
    tmp_path: Path,
    t0: datetime,
) -> None:
    """firmware_sim/scenarios/compressor_failure.yaml, sampled once a minute of scenario time:
    both chilled compressors die at minute 5 and warm 1 °C/min up to 14 °C."""
    scenario = load_scenario(Path(firmware_sim.__file__).parent / "scenarios"
                             / "compressor_failure.yaml")  # fmt: skip
    site = make_site(db_session, settings)
    sensors = [(spec.compartment or "", spec.zone, spec.id, spec.profile.celsius_at)
               for spec in scenario.sensors]  # fmt: skip
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, site.locker_id, t0, 60,
                       sensors=sensors)  # fmt: skip
    reports = run_scans(db_session, telemetry, t0, range(2, 61, 2))

    episodes: dict[str, tuple[int, Episode]] = {}
    for minute, report in reports.items():
        for episode_id in report.raised:
            episode = db_session.get(Episode, episode_id)
            assert episode is not None
            assert episode.compartment not in episodes  # one excursion per compartment
            episodes[episode.compartment] = (minute, episode)
    assert sorted(episodes) == ["0-1", "0-2"]  # the frozen probe stays quiet
    # (In this scenario the "healthy" order's compartment 0-2 fails too.)
    # 0-2 (3.5 °C base) passes the 12 °C hard limit at minute 14 (12.5 °C), 0-1 (3 °C) at 15.
    for label, minute, order in (("0-2", 14, site.healthy), ("0-1", 15, site.failing)):
        scan_minute, episode = episodes[label]
        assert episode.rule == "hard_limit"
        assert episode.raised_at == t0 + timedelta(minutes=minute)
        assert scan_minute == minute + (minute % 2)  # the first scan to see that reading
        assert episode.order_ids == [order.id]
