"""Excursion rules per zone and the incremental, per-compartment evaluator (pure, no I/O).

Rules of one zone (defaults from ARCHITECTURE.md, all configurable):

- duration: above ``limit`` for ``limit_minutes`` consecutive minutes (chilled 8 °C / 15 min,
  frozen −15 °C / 15 min). A reading at or below the limit restarts the clock.
- hard limit: one reading above ``hard_limit`` is enough (chilled 12 °C; none for frozen).
- cumulative: time above ``limit`` within the last ``cumulative_window_hours`` exceeds
  ``cumulative_minutes`` (WHO-style cumulative indicator): catches many short door spikes that
  never last 15 minutes each.
- hysteresis: an excursion clears only after ``clear_minutes`` at or below
  ``limit − hysteresis``, so a reading hovering around the limit raises once and does not
  flap between raised and cleared.
- silence: no reading for ``silence_minutes`` (checked against "now") is itself an alert, and
  the first reading after it resumes the sensor.

The evaluator is incremental: each run feeds the readings newer than the state's last one
(sampling time, so a backlog the edge forwards after an outage is judged when it was
measured) and gets back events; the state is a small JSON-safe object persisted between runs.
An episode raises exactly one ``excursion_raised`` whatever rules fire during it, and one
``excursion_cleared`` after recovery. Feeding the same readings in one run or in many gives
the same events (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from telemetry.schema import ZONE_CHILLED, ZONE_FROZEN
from telemetry.stats import Reading

NS_PER_MIN = 60_000_000_000

RULE_DURATION = "duration"
RULE_HARD_LIMIT = "hard_limit"
RULE_CUMULATIVE = "cumulative"
RULE_SILENCE = "silence"

EventKind = Literal["excursion_raised", "excursion_cleared", "sensor_silent", "sensor_resumed"]


@dataclass(frozen=True)
class ZoneRules:
    """Thresholds of one zone; temperatures in °C, durations in minutes."""

    zone: str
    target_low: float | None
    target_high: float | None
    limit: float
    limit_minutes: float = 15
    hard_limit: float | None = None
    cumulative_minutes: float | None = 60
    cumulative_window_hours: float = 24
    hysteresis: float = 1.0
    clear_minutes: float = 5
    silence_minutes: float = 10
    # A reading stands for at most this long in cumulative accounting, so a gap in the data
    # is not counted as an hour above the limit.
    max_gap_minutes: float = 10
    # Readings kept before an episode starts, attached to the alert as its proof.
    evidence_minutes: float = 30

    def __post_init__(self) -> None:
        if self.hard_limit is not None and self.hard_limit <= self.limit:
            raise ValueError(f"{self.zone}: hard_limit must be above limit")
        if self.hysteresis < 0 or self.limit_minutes < 0 or self.clear_minutes < 0:
            raise ValueError(f"{self.zone}: hysteresis and durations must not be negative")


DEFAULT_RULES: Mapping[str, ZoneRules] = {
    ZONE_CHILLED: ZoneRules(
        zone=ZONE_CHILLED, target_low=0.0, target_high=4.0, limit=8.0, hard_limit=12.0
    ),
    ZONE_FROZEN: ZoneRules(zone=ZONE_FROZEN, target_low=None, target_high=-18.0, limit=-15.0),
}


def rules_with_overrides(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, ZoneRules]:
    """Defaults with per-zone overrides, e.g. ``{"chilled": {"limit_minutes": 10}}``."""
    rules = dict(DEFAULT_RULES)
    for zone, changes in overrides.items():
        base = rules.get(zone) or ZoneRules(zone=zone, target_low=None, target_high=None, limit=0)
        rules[zone] = replace(base, zone=zone, **dict(changes))
    return rules


@dataclass(frozen=True)
class Event:
    """Something ops must hear about; ``at_ns`` is the sampling time the rule fired at."""

    kind: EventKind
    locker: str
    compartment: str
    zone: str
    at_ns: int
    rule: str
    detail: str
    started_ns: int | None = None
    peak_c: float | None = None
    evidence: tuple[Reading, ...] = ()


@dataclass
class CompartmentState:
    """Everything the evaluator remembers about one compartment between runs."""

    locker: str
    compartment: str
    zone: str
    last_t_ns: int | None = None
    last_c: float | None = None
    above_since_ns: int | None = None
    # Closed intervals [start_ns, end_ns] spent above the limit, pruned to the window.
    above_segments: list[list[int]] = field(default_factory=list)
    in_excursion: bool = False
    episode_started_ns: int | None = None
    episode_rule: str | None = None
    peak_c: float | None = None
    recovering_since_ns: int | None = None
    silent: bool = False
    episodes: int = 0
    recent: deque[tuple[int, float]] = field(default_factory=deque)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "recent"}
        data["recent"] = [list(r) for r in self.recent]
        data["above_segments"] = [list(s) for s in self.above_segments]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompartmentState:
        values = dict(data)
        values["recent"] = deque((int(t), float(c)) for t, c in values.get("recent", []))
        values["above_segments"] = [[int(a), int(b)] for a, b in values.get("above_segments", [])]
        return cls(**values)


class Evaluator:
    """Applies the zone rules to compartment states; holds no state of its own."""

    def __init__(self, rules: Mapping[str, ZoneRules] = DEFAULT_RULES) -> None:
        self.rules = dict(rules)

    def rules_for(self, zone: str) -> ZoneRules | None:
        return self.rules.get(zone)

    def evaluate(
        self, state: CompartmentState, readings: Iterable[Reading], now_ns: int | None = None
    ) -> list[Event]:
        """Feed readings (any order; already-seen ones are skipped), then check silence."""
        rules = self.rules.get(state.zone)
        events: list[Event] = []
        if rules is None:
            return events
        for reading in sorted(readings, key=lambda r: r.t_ns):
            if state.last_t_ns is not None and reading.t_ns <= state.last_t_ns:
                continue
            if state.silent:
                state.silent = False
                events.append(
                    _event(state, "sensor_resumed", reading.t_ns, RULE_SILENCE,
                           f"sensor reporting again ({reading.celsius:.1f} °C)")
                )  # fmt: skip
            event = self._step(state, rules, reading)
            if event is not None:
                events.append(event)
        if now_ns is not None:
            silent = self.check_silence(state, now_ns)
            if silent is not None:
                events.append(silent)
        return events

    def check_silence(self, state: CompartmentState, now_ns: int) -> Event | None:
        rules = self.rules.get(state.zone)
        if rules is None or state.silent or state.last_t_ns is None:
            return None
        quiet_min = (now_ns - state.last_t_ns) / NS_PER_MIN
        if quiet_min <= rules.silence_minutes:
            return None
        state.silent = True
        return _event(
            state, "sensor_silent", now_ns, RULE_SILENCE,
            f"no reading for {quiet_min:.0f} min (limit {rules.silence_minutes:g} min)",
            started_ns=state.last_t_ns,
        )  # fmt: skip

    def _step(self, state: CompartmentState, rules: ZoneRules, reading: Reading) -> Event | None:
        t, c = reading.t_ns, reading.celsius
        # Sample-and-hold: the previous reading's value stood until now (gap capped).
        if state.last_t_ns is not None and state.last_c is not None and state.last_c > rules.limit:
            end = min(t, state.last_t_ns + int(rules.max_gap_minutes * NS_PER_MIN))
            _add_segment(state.above_segments, state.last_t_ns, end)
        state.last_t_ns, state.last_c = t, c
        keep_from = t - int((rules.evidence_minutes + rules.limit_minutes) * NS_PER_MIN)
        state.recent.append((t, c))
        while state.recent and state.recent[0][0] < keep_from:
            state.recent.popleft()

        above = c > rules.limit
        if above:
            if state.above_since_ns is None:
                state.above_since_ns = t
        else:
            state.above_since_ns = None

        if state.in_excursion:
            state.peak_c = c if state.peak_c is None else max(state.peak_c, c)
            if c <= rules.limit - rules.hysteresis:
                if state.recovering_since_ns is None:
                    state.recovering_since_ns = t
                if (t - state.recovering_since_ns) >= rules.clear_minutes * NS_PER_MIN:
                    return self._clear(state, t)
            else:
                state.recovering_since_ns = None
            return None

        rule, started = self._trigger(state, rules, t, c)
        if rule is None or started is None:
            return None
        state.in_excursion = True
        state.episode_started_ns = started
        state.episode_rule = rule
        state.peak_c = max((rc for rt, rc in state.recent if rt >= started), default=c)
        state.recovering_since_ns = None
        state.episodes += 1
        evidence_from = started - int(rules.evidence_minutes * NS_PER_MIN)
        evidence = tuple(Reading(rt, rc) for rt, rc in state.recent if rt >= evidence_from)
        return _event(
            state, "excursion_raised", t, rule, _describe(rule, rules, state, t),
            started_ns=started, peak_c=state.peak_c, evidence=evidence,
        )  # fmt: skip

    def _trigger(
        self, state: CompartmentState, rules: ZoneRules, t: int, c: float
    ) -> tuple[str | None, int | None]:
        if rules.hard_limit is not None and c > rules.hard_limit:
            return RULE_HARD_LIMIT, state.above_since_ns or t
        if (
            state.above_since_ns is not None
            and (t - state.above_since_ns) >= rules.limit_minutes * NS_PER_MIN
        ):
            return RULE_DURATION, state.above_since_ns
        if rules.cumulative_minutes is not None:
            window_start = t - int(rules.cumulative_window_hours * 60 * NS_PER_MIN)
            _prune(state.above_segments, window_start)
            total = sum(b - a for a, b in state.above_segments)
            if total > rules.cumulative_minutes * NS_PER_MIN:
                return RULE_CUMULATIVE, state.above_segments[0][0]
        return None, None

    def _clear(self, state: CompartmentState, t: int) -> Event:
        started = state.episode_started_ns
        minutes = (t - started) / NS_PER_MIN if started is not None else 0.0
        event = _event(
            state, "excursion_cleared", t, state.episode_rule or RULE_DURATION,
            f"recovered after {minutes:.0f} min (peak {state.peak_c:.1f} °C)",
            started_ns=started, peak_c=state.peak_c,
        )  # fmt: skip
        state.in_excursion = False
        state.episode_started_ns = None
        state.episode_rule = None
        state.peak_c = None
        state.recovering_since_ns = None
        # A new episode starts from a clean slate: earlier time above the limit already
        # produced this alert and must not re-raise the cumulative rule at once.
        state.above_segments.clear()
        return event


def _add_segment(segments: list[list[int]], start: int, end: int) -> None:
    if end <= start:
        return
    if segments and segments[-1][1] >= start:
        segments[-1][1] = max(segments[-1][1], end)
    else:
        segments.append([start, end])


def _prune(segments: list[list[int]], window_start: int) -> None:
    while segments and segments[0][1] <= window_start:
        segments.pop(0)
    if segments and segments[0][0] < window_start:
        segments[0][0] = window_start


def _describe(rule: str, rules: ZoneRules, state: CompartmentState, t: int) -> str:
    if rule == RULE_HARD_LIMIT:
        return f"{state.last_c:.1f} °C is above the hard limit of {rules.hard_limit:g} °C"
    if rule == RULE_DURATION:
        return f"above {rules.limit:g} °C for {rules.limit_minutes:g} min or more"
    total = sum(b - a for a, b in state.above_segments) / NS_PER_MIN
    return (
        f"{total:.0f} min above {rules.limit:g} °C within {rules.cumulative_window_hours:g} h "
        f"(budget {rules.cumulative_minutes:g} min)"
    )


def _event(
    state: CompartmentState,
    kind: EventKind,
    at_ns: int,
    rule: str,
    detail: str,
    *,
    started_ns: int | None = None,
    peak_c: float | None = None,
    evidence: tuple[Reading, ...] = (),
) -> Event:
    return Event(
        kind=kind,
        locker=state.locker,
        compartment=state.compartment,
        zone=state.zone,
        at_ns=at_ns,
        rule=rule,
        detail=detail,
        started_ns=started_ns,
        peak_c=peak_c,
        evidence=evidence,
    )
