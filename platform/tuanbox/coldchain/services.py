"""The excursion scan: read new readings from InfluxDB, run the rules, act on what they raise.

One run, in one DB transaction: load every compartment's evaluator state; ask InfluxDB which
compartments have readings in the lookback window and when their newest is (one row each);
read the new readings of the compartments judged recently in one shared statement, and those
of new, re-zoned or long-silent compartments (a locker forwarding its buffer after an outage)
each on their own; feed them to the pure evaluator; then for each event:

- excursion raised: an episode row holding the series that proves it, the orders deposited in
  the compartment put on quality hold (pickup revoked at the locker), a critical ops alert
  pointing at the episode, and a sensor event for each order's batch (provenance sink);
- excursion cleared: the episode is closed (the alert stays until ops decide on the holds);
- sensor silent: a warning alert (the zone is unwatched), once; resolved when it reports again.

A compartment in a watched zone that has never reported at all (a sensor never wired, a locker
that never came online) is silent too once it has existed for ``never_reported_after_min``.

Runs are serialised with a PostgreSQL advisory lock so two workers never raise the same
episode twice; the states are saved in the same transaction as the alerts they caused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from telemetry.influx import InfluxClient
from telemetry.queries import last_times, raw_readings, readings_since
from telemetry.rules import CompartmentState, Evaluator, Event, rules_with_overrides
from telemetry.schema import from_ns, to_ns
from telemetry.settings import TelemetrySettings
from telemetry.stats import Reading
from tuanbox.coldchain.holds import SYSTEM, compartment_id, place_holds
from tuanbox.coldchain.models import ColdChainState, Episode
from tuanbox.coldchain.provenance import EpisodeProvenance, ProvenanceSink
from tuanbox.db.engine import settings_of

log = logging.getLogger("tuanbox.coldchain")

EXCURSION_KIND = "cold_chain_excursion"
SILENCE_KIND = "sensor_silent"
EXCURSION_NEXT_STEP = (
    "Check the compartment's cooling and the goods; release or reject each held order on the "
    "ops page (rejected orders are refunded); move reserved deliveries elsewhere."
)
SILENCE_NEXT_STEP = (
    "Check that the locker is online and the sensor wired; until it reports again the zone is "
    "unwatched, so check the goods on site."
)
# Compartments judged less than this long ago share one read from the oldest of them;
# anything further behind gets a read of its own (see scan).
_SHARED_READ_NS = 15 * 60_000_000_000
# Key of the advisory lock that serialises scans across workers.
_SCAN_LOCK_KEY = 0x7475_616E_6378  # "tuancx"


@dataclass
class ScanReport:
    skipped: bool = False
    compartments: int = 0
    readings: int = 0
    raised: list[int] = field(default_factory=list)  # episode ids
    cleared: list[int] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)  # "locker/compartment"
    held_orders: list[str] = field(default_factory=list)


def _locked(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SCAN_LOCK_KEY}))


def scan(
    session: Session,
    influx: InfluxClient,
    telemetry: TelemetrySettings,
    *,
    now: datetime,
    command_ttl_s: float | None = None,
    provenance: ProvenanceSink | None = None,
    evaluator: Evaluator | None = None,
    never_reported_after_min: float | None = None,
) -> ScanReport:
    """Evaluate everything new up to ``now``; the caller commits.

    ``command_ttl_s``: the lifetime of the revokes sent for quality holds; None takes the
    session's settings (TUANBOX_COMMAND_TTL_S), never a default of its own: a session without
    settings refuses once a hold is placed (SettingsNotBoundError).

    ``never_reported_after_min`` (TUANBOX_COLDCHAIN_SILENCE_MINUTES): how long a compartment
    may exist without a single reading before it is alerted silent; None uses its zone's
    ``silence_minutes``.
    """
    report = ScanReport()
    if not _locked(session):
        report.skipped = True
        return report
    evaluator = evaluator or Evaluator(rules_with_overrides(telemetry.rules))
    sink = provenance or EpisodeProvenance()
    now_ns = to_ns(now)
    rows = {(r.locker_id, r.compartment): r for r in session.scalars(select(ColdChainState))}
    states = {key: CompartmentState.from_dict(row.state) for key, row in rows.items()}

    zones = tuple(evaluator.rules)
    floor = now_ns - telemetry.scan_lookback_minutes * 60_000_000_000
    until = now_ns + 1
    # One row per compartment with data in the window says who has something new.
    latest = last_times(influx, since_ns=floor, until_ns=until, zones=zones)
    fresh: list[tuple[str, str, str]] = []  # judged up to a few minutes ago: one shared read
    behind: list[tuple[str, str, str]] = []  # new, re-zoned or back from an outage: own read
    for key, last in latest.items():
        state = states.get(key[:2])
        if state is None or state.zone != key[2]:
            # A compartment never judged (a new locker may forward readings older than every
            # known state), or one re-zoned: start afresh under its zone's rules.
            states[key[:2]] = CompartmentState(key[0], key[1], key[2])
            behind.append(key)
        elif state.last_t_ns is None or state.last_t_ns < now_ns - _SHARED_READ_NS:
            behind.append(key)
        elif last > state.last_t_ns:
            fresh.append(key)
    batches: dict[tuple[str, str, str], list[Reading]] = {}
    if fresh:
        since = min(states[k[:2]].last_t_ns or floor for k in fresh)
        batches = readings_since(influx, since_ns=since, until_ns=until, zones=zones)
    for key in behind:
        state = states[key[:2]]
        # Back after an outage, a locker forwards its buffer oldest first: judge all of it
        # (up to the backlog limit), so an excursion during the outage is still raised at its
        # sampling time; a compartment never seen is judged over the whole window.
        backlog_floor = now_ns - telemetry.scan_backlog_days * 86_400 * 10**9
        start = max(state.last_t_ns + 1, backlog_floor) if state.last_t_ns else floor + 1
        batches[key] = raw_readings(influx, locker=key[0], compartment=key[1], start_ns=start,
                                    end_ns=until)  # fmt: skip
    for key in [*fresh, *behind]:
        state = states[key[:2]]
        readings = batches.get(key, [])
        report.readings += len(readings)
        for event in evaluator.evaluate(state, readings):
            _handle(session, event, report, now=now, ttl=command_ttl_s, sink=sink)
    for state in states.values():
        silent = evaluator.check_silence(state, now_ns)
        if silent is not None:
            _handle(session, silent, report, now=now, ttl=command_ttl_s, sink=sink)
    for state in _never_reported(session, evaluator, states, now, never_reported_after_min):
        states[(state.locker, state.compartment)] = state
        event = Event(kind="sensor_silent", locker=state.locker, compartment=state.compartment,
                      zone=state.zone, at_ns=now_ns, rule="silence",
                      detail="no reading since the compartment was provisioned")  # fmt: skip
        _handle(session, event, report, now=now, ttl=command_ttl_s, sink=sink)

    for (locker, label), state in states.items():
        row = rows.get((locker, label))
        if row is None:
            row = ColdChainState(locker_id=locker, compartment=label, zone=state.zone, state={})
            session.add(row)
        row.zone = state.zone
        row.state = state.to_dict()
        row.updated_at = now
    report.compartments = len(states)
    session.flush()
    return report


def _never_reported(
    session: Session,
    evaluator: Evaluator,
    states: dict[tuple[str, str], CompartmentState],
    now: datetime,
    after_min: float | None,
) -> list[CompartmentState]:
    """Compartments of watched zones with no reading ever, provisioned long enough ago.

    Each comes back as a state already marked silent, so it is alerted once; its first
    reading then clears the flag (``sensor_resumed``) like any silent sensor's.
    """
    from tuanbox.lockers.domain import as_utc
    from tuanbox.lockers.models import Compartment

    found = []
    for comp in session.scalars(
        select(Compartment)
        .where(Compartment.zone.in_(tuple(evaluator.rules)),
               Compartment.state != "out_of_service")
        .order_by(Compartment.id)
    ):  # fmt: skip
        label = f"{comp.board}-{comp.lock}"
        rules = evaluator.rules_for(comp.zone)
        if (comp.locker_id, label) in states or rules is None:
            continue
        limit = rules.silence_minutes if after_min is None else after_min
        if (now - as_utc(comp.created_at)).total_seconds() / 60 <= limit:
            continue
        found.append(CompartmentState(comp.locker_id, label, comp.zone, silent=True))
    return found


def _resolve_silence(session: Session, locker: str, label: str) -> None:
    """The sensor reports again: its silence alerts are settled (audited as the system)."""
    from tuanbox.fulfilment.alerts import resolve
    from tuanbox.fulfilment.models import OpsAlert

    comp_id = compartment_id(session, locker, label)
    if comp_id is None:
        return
    for alert_id in session.scalars(
        select(OpsAlert.id).where(OpsAlert.kind == SILENCE_KIND, OpsAlert.locker_id == locker,
                                  OpsAlert.compartment_id == comp_id,
                                  OpsAlert.status != "resolved")
    ).all():  # fmt: skip
        resolve(session, alert_id, SYSTEM, "the sensor reports again")


def _handle(
    session: Session,
    event: Event,
    report: ScanReport,
    *,
    now: datetime,
    ttl: float | None,
    sink: ProvenanceSink,
) -> None:
    from tuanbox.fulfilment.alerts import open_alert

    where = f"{event.zone} compartment {event.compartment} of locker {event.locker}"
    if event.kind == "excursion_raised":
        comp_id = compartment_id(session, event.locker, event.compartment)
        started = from_ns(event.started_ns if event.started_ns is not None else event.at_ns)
        episode = Episode(
            locker_id=event.locker, compartment=event.compartment, zone=event.zone,
            rule=event.rule, detail=event.detail[:500], status="open", started_at=started,
            raised_at=from_ns(event.at_ns), peak_c=event.peak_c,
            evidence=[[r.t_ns, r.celsius] for r in event.evidence], order_ids=[], provenance=[],
        )  # fmt: skip
        session.add(episode)
        session.flush()
        if ttl is None:
            ttl = settings_of(session).command_ttl_s
        held = place_holds(session, episode, comp_id, now=now, command_ttl_s=ttl)
        episode.order_ids = [h.order_id for h in held]
        peak = f"{event.peak_c:.1f} °C" if event.peak_c is not None else "n/a"
        alert = open_alert(
            session,
            kind=EXCURSION_KIND,
            locker_id=event.locker,
            compartment_id=comp_id,
            order_id=held[0].order_id if held else None,
            detail=(
                f"Excursion #{episode.id} in the {where}: {event.detail}; since "
                f"{started:%Y-%m-%d %H:%M} UTC, peak {peak}. {len(held)} order(s) on quality "
                "hold."
            ),
            next_step=EXCURSION_NEXT_STEP,
            severity="critical",
        )
        episode.alert_id = alert.id
        if held:
            episode.provenance = [*episode.provenance,
                                  *sink.excursion(session, episode, episode.order_ids)]  # fmt: skip
        report.raised.append(episode.id)
        report.held_orders += episode.order_ids
        log.warning("cold-chain excursion #%s raised: %s (%s)", episode.id, where, event.rule)
    elif event.kind == "excursion_cleared":
        open_episode = session.scalars(
            select(Episode)
            .where(Episode.locker_id == event.locker, Episode.compartment == event.compartment,
                   Episode.status == "open")
            .order_by(Episode.id.desc())
        ).first()  # fmt: skip
        if open_episode is not None:
            open_episode.status = "cleared"
            open_episode.cleared_at = from_ns(event.at_ns)
            report.cleared.append(open_episode.id)
        log.info("cold-chain excursion cleared: %s", where)
    elif event.kind == "sensor_silent":
        open_alert(
            session,
            kind=SILENCE_KIND,
            locker_id=event.locker,
            compartment_id=compartment_id(session, event.locker, event.compartment),
            detail=f"Sensor of the {where} is silent: {event.detail}.",
            next_step=SILENCE_NEXT_STEP,
            severity="warning",
        )
        report.silent.append(f"{event.locker}/{event.compartment}")
    else:
        _resolve_silence(session, event.locker, event.compartment)
        log.info("sensor of the %s reports again", where)
