"""What the ops pages show, assembled from the DB (lockers, alerts, holds) and InfluxDB.

InfluxDB being down must not take the ops pages down with it: telemetry errors become a
banner (``telemetry_error``) and empty readings, the DB part still renders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from telemetry import queries
from telemetry.errors import TelemetryError
from telemetry.influx import InfluxClient
from telemetry.rules import DEFAULT_RULES, ZoneRules
from telemetry.schema import from_ns, to_ns
from tuanbox.ops.charts import Bucket, Threshold

ACTIVE = ("open", "acknowledged")
LOOKBACK = timedelta(days=7)


@dataclass
class LockerRow:
    id: str
    station_id: str
    station_name: str
    online: bool
    last_seen_at: datetime | None
    agent_version: str | None
    outbox_depth: int | None
    mqtt_connected: bool | None
    health_at: datetime | None
    open_alerts: int
    # (label, zone, °C, above the zone's excursion limit)
    temps: list[tuple[str, str, float, bool]] = field(default_factory=list)


@dataclass
class Fleet:
    lockers: list[LockerRow]
    stations: list[dict[str, Any]]
    open_alerts: int
    telemetry_error: str | None


def _active_alerts_by_locker(session: Session) -> dict[str | None, int]:
    from tuanbox.fulfilment.models import OpsAlert

    rows = session.execute(
        select(OpsAlert.locker_id, func.count())
        .where(OpsAlert.status.in_(ACTIVE))
        .group_by(OpsAlert.locker_id)
    ).all()
    return {locker: int(n) for locker, n in rows}


def fleet(session: Session, influx: InfluxClient, now: datetime) -> Fleet:
    from tuanbox.lockers.models import Locker, Station

    stations = session.scalars(select(Station).order_by(Station.name, Station.id)).all()
    names = {s.id: s.name for s in stations}
    alerts = _active_alerts_by_locker(session)
    error = None
    health: dict[str, queries.HealthSnapshot] = {}
    latest: list[queries.LatestReading] = []
    since = to_ns(now - LOOKBACK)
    try:
        health = queries.locker_health(influx, since_ns=since)
        latest = queries.latest_per_compartment(influx, since_ns=since)
    except TelemetryError as exc:
        error = f"telemetry unavailable ({exc.code}): {exc.message}"
    temps: dict[str, list[tuple[str, str, float, bool]]] = {}
    for r in latest:
        zone = DEFAULT_RULES.get(r.zone)
        if zone is not None:
            warm = r.celsius > zone.limit
            temps.setdefault(r.locker, []).append((r.compartment, r.zone, r.celsius, warm))
    rows = []
    for locker in session.scalars(select(Locker).order_by(Locker.id)):
        h = health.get(locker.id)
        rows.append(
            LockerRow(
                id=locker.id,
                station_id=locker.station_id,
                station_name=names.get(locker.station_id, locker.station_id),
                online=bool(locker.online),
                last_seen_at=locker.last_seen_at,
                agent_version=locker.agent_version or (h.agent_version if h else None),
                outbox_depth=h.outbox_depth if h else None,
                mqtt_connected=h.mqtt_connected if h else None,
                health_at=from_ns(h.t_ns) if h else None,
                open_alerts=alerts.get(locker.id, 0),
                temps=temps.get(locker.id, []),
            )
        )
    station_rows = [
        {
            "id": s.id,
            "name": s.name,
            "address": s.address,
            "lat": s.lat,
            "lon": s.lon,
            "lockers": [r for r in rows if r.station_id == s.id],
        }
        for s in stations
    ]
    return Fleet(rows, station_rows, sum(alerts.values()), error)


def thresholds(zone: str, rules: dict[str, ZoneRules] | None = None) -> list[Threshold]:
    zr = (rules or dict(DEFAULT_RULES)).get(zone)
    if zr is None:
        return []
    out = []
    if zr.target_high is not None:
        out.append(Threshold(zr.target_high, f"target ≤ {zr.target_high:g}", "target"))
    out.append(Threshold(zr.limit, f"limit {zr.limit:g} / {zr.limit_minutes:g} min", "limit"))
    if zr.hard_limit is not None:
        out.append(Threshold(zr.hard_limit, f"hard {zr.hard_limit:g}", "hard"))
    return out


def chart_buckets(
    influx: InfluxClient, locker_id: str, label: str, start: datetime, end: datetime
) -> tuple[list[Bucket], int]:
    series = queries.chart_series(influx, locker=locker_id, compartment=label,
                                  start_ns=to_ns(start), end_ns=to_ns(end))  # fmt: skip
    return [Bucket(p.t_ns, p.mean, p.low, p.high) for p in series.points], series.step_s


@dataclass
class CompartmentView:
    id: int
    label: str
    size: str
    zone: str
    state: str
    flagged: bool
    celsius: float | None
    reading_at: datetime | None
    excursion: bool


@dataclass
class LockerView:
    row: LockerRow
    compartments: list[CompartmentView]
    doors: list[tuple[datetime, str, str]]  # (when, compartment, open|closed), newest first
    episodes: list[Any]
    telemetry_error: str | None


def locker_view(
    session: Session, influx: InfluxClient, locker_id: str, now: datetime, hours: int
) -> LockerView | None:
    from tuanbox.coldchain.models import Episode
    from tuanbox.lockers.models import Compartment

    board = fleet_row(session, influx, locker_id, now)
    if board is None:
        return None
    row, error = board
    latest: dict[str, queries.LatestReading] = {}
    doors: list[queries.DoorEvent] = []
    try:
        latest = {
            r.compartment: r
            for r in queries.latest_per_compartment(influx, locker=locker_id,
                                                    since_ns=to_ns(now - LOOKBACK))
        }  # fmt: skip
        doors = queries.door_events(influx, locker=locker_id,
                                    start_ns=to_ns(now - timedelta(hours=hours)),
                                    end_ns=to_ns(now) + 1, limit=50)  # fmt: skip
    except TelemetryError as exc:
        error = error or f"telemetry unavailable ({exc.code}): {exc.message}"
    episodes = session.scalars(
        select(Episode).where(Episode.locker_id == locker_id).order_by(Episode.id.desc()).limit(20)
    ).all()
    in_excursion = {e.compartment for e in episodes if e.status == "open"}
    comps = []
    for c in session.scalars(
        select(Compartment).where(Compartment.locker_id == locker_id).order_by(
            Compartment.board, Compartment.lock)
    ):  # fmt: skip
        reading = latest.get(c.label)
        comps.append(
            CompartmentView(
                id=c.id, label=c.label, size=c.size, zone=c.zone, state=c.state,
                flagged=bool(c.flagged_mismatch),
                celsius=reading.celsius if reading else None,
                reading_at=from_ns(reading.t_ns) if reading else None,
                excursion=c.label in in_excursion,
            )
        )  # fmt: skip
    door_rows = [(from_ns(d.t_ns), d.compartment, d.state) for d in doors]
    return LockerView(row, comps, door_rows, list(episodes), error)


def fleet_row(
    session: Session, influx: InfluxClient, locker_id: str, now: datetime
) -> tuple[LockerRow, str | None] | None:
    from tuanbox.lockers.models import Locker

    if session.get(Locker, locker_id) is None:
        return None
    board = fleet(session, influx, now)
    row = next(r for r in board.lockers if r.id == locker_id)
    return row, board.telemetry_error


@dataclass
class AlertView:
    alert: Any
    compartment_label: str | None
    episode: Any | None
    holds: list[Any]
    # hold id → the stay's cold-chain summary (None when InfluxDB could not say)
    stays: dict[int, Any] = field(default_factory=dict)


def alerts_view(
    session: Session,
    statuses: tuple[str, ...] = ACTIVE,
    influx: InfluxClient | None = None,
    now: datetime | None = None,
) -> list[AlertView]:
    from tuanbox.coldchain.holds import holds_of_episode
    from tuanbox.coldchain.models import Episode
    from tuanbox.coldchain.summaries import stay_summary
    from tuanbox.fulfilment.alerts import list_alerts
    from tuanbox.lockers.models import Compartment

    out = []
    for alert in list_alerts(session, statuses=statuses):
        comp = session.get(Compartment, alert.compartment_id) if alert.compartment_id else None
        episode = session.scalars(select(Episode).where(Episode.alert_id == alert.id)).first()
        holds = holds_of_episode(session, episode.id) if episode else []
        stays: dict[int, Any] = {}
        if influx is not None and now is not None and episode is not None:
            for hold in holds:
                try:
                    stays[hold.id] = stay_summary(session, influx, hold, episode, now)
                except TelemetryError:
                    stays[hold.id] = None
        out.append(AlertView(alert, comp.label if comp else None, episode, holds, stays))
    return out


def live_snapshot(session: Session, influx: InfluxClient, now: datetime) -> dict[str, Any]:
    """What the SSE stream pushes: small, and with a digest of the alert list so pages only
    re-fetch it when something changed."""
    from tuanbox.fulfilment.models import OpsAlert

    board = fleet(session, influx, now)
    alert_rows = session.execute(
        select(OpsAlert.id, OpsAlert.status).where(OpsAlert.status.in_(ACTIVE))
        .order_by(OpsAlert.id)
    ).all()  # fmt: skip
    digest = hashlib.sha256(repr([tuple(r) for r in alert_rows]).encode()).hexdigest()[:16]
    return {
        "at": now.isoformat(),
        "open_alerts": len(alert_rows),
        "alerts_digest": digest,
        "telemetry_error": board.telemetry_error,
        "lockers": {
            r.id: {
                "online": r.online,
                "last_seen": r.last_seen_at.isoformat() if r.last_seen_at else None,
                "outbox_depth": r.outbox_depth,
                "open_alerts": r.open_alerts,
            }
            for r in board.lockers
        },
        "temps": {
            f"{r.id}/{label}": round(c, 2) for r in board.lockers for label, _, c, _ in r.temps
        },
    }
