"""Unit tests of the excursion rules and the MKT statistics on synthetic series (pure)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.profiles import compressor_failure, door_spikes, steady
from telemetry.rules import (
    DEFAULT_RULES,
    NS_PER_MIN,
    CompartmentState,
    Evaluator,
    Event,
    rules_with_overrides,
)
from telemetry.stats import Reading, mean_kinetic_temperature, summarize

T0 = 1_796_000_000 * 1_000_000_000  # an arbitrary whole second, in ns


def series(profile: Callable[[float], float], minutes: int, every_s: int = 60) -> list[Reading]:
    return [
        Reading(T0 + i * every_s * 1_000_000_000, round(profile(i * every_s), 3))
        for i in range(minutes * 60 // every_s)
    ]


def at_min(event: Event) -> float:
    return (event.at_ns - T0) / NS_PER_MIN


def run(readings: list[Reading], zone: str = "chilled", **overrides: float) -> list[Event]:
    rules = rules_with_overrides({zone: overrides}) if overrides else DEFAULT_RULES
    state = CompartmentState("L1", "0-1", zone)
    return Evaluator(rules).evaluate(state, readings)


# --- mean kinetic temperature and summaries ------------------------------------------------


def test_worked_example_mkt_is_above_the_mean() -> None:
    temps = [2, 2, 5, 8, 8, 8, 8]
    mkt = mean_kinetic_temperature([float(t) for t in temps])
    assert round(mkt, 1) == 6.3
    assert round(sum(temps) / len(temps), 1) == 5.9


def test_mkt_of_a_constant_series_is_that_temperature_and_weights_matter() -> None:
    assert mean_kinetic_temperature([4.0] * 100) == pytest.approx(4.0)
    # One hour at 20 °C weighs more than one minute at 20 °C next to an hour at 2 °C.
    short = mean_kinetic_temperature([2.0, 20.0], weights=[3600, 60])
    long = mean_kinetic_temperature([2.0, 20.0], weights=[60, 3600])
    assert 2.0 < short < long < 20.0
    with pytest.raises(ValueError, match="empty"):
        mean_kinetic_temperature([])


def test_summary_counts_time_out_of_range() -> None:
    readings = [Reading(T0 + i * 60 * 10**9, c) for i, c in enumerate([2, 2, 5, 8, 8, 8, 8])]
    summary = summarize(readings, low=0.0, high=4.0)
    assert summary is not None
    assert (summary.min_c, summary.max_c, summary.count) == (2, 8, 7)
    assert round(summary.mean_c, 1) == 5.9
    assert round(summary.mkt_c, 1) == 6.3
    assert summary.seconds_above == 5 * 60  # five readings above 4 °C, one minute each
    assert summary.seconds_below == 0
    assert summarize([], low=0, high=4) is None


# --- excursion rules ----------------------------------------------------------------------


def test_steady_and_door_spikes_raise_nothing() -> None:
    assert run(series(lambda s: steady(3.5, s), 24 * 60)) == []
    # Spikes to 7 °C every 10 minutes (the simulator's steady scenario) stay below the limit.
    assert run(series(lambda s: door_spikes(3.0, 4.0, 600, 60, s), 24 * 60, every_s=15)) == []


def test_compressor_failure_raises_once_on_the_duration_rule_at_the_right_time() -> None:
    # 3 °C, fails at minute 60, +0.25 °C/min capped at 10 °C: first reading above 8 °C at
    # minute 81 (8.25 °C), so 15 minutes later, at minute 96, the duration rule fires.
    events = run(series(lambda s: compressor_failure(3.0, 3600, 0.25, 10.0, s), 240))
    assert [e.kind for e in events] == ["excursion_raised"]
    (raised,) = events
    assert raised.rule == "duration"
    assert at_min(raised) == 96
    assert raised.started_ns == T0 + 81 * NS_PER_MIN
    assert raised.peak_c == 10.0
    # The proof covers the episode and the half hour before it.
    assert raised.evidence[0].t_ns == T0 + 51 * NS_PER_MIN
    assert raised.evidence[-1].t_ns == raised.at_ns
    assert max(r.celsius for r in raised.evidence) == 10.0


def test_hard_limit_fires_without_waiting() -> None:
    # +0.5 °C/min: 8.5 °C at minute 71, 12.5 °C at minute 79 (hard limit 12 °C) — before the
    # duration rule's minute 86.
    events = run(series(lambda s: compressor_failure(3.0, 3600, 0.5, 15.0, s), 120))
    assert [(e.kind, e.rule, at_min(e)) for e in events] == [("excursion_raised", "hard_limit", 79)]


def test_recovery_clears_once_after_the_hysteresis_hold() -> None:
    def profile(s: float) -> float:
        # Fails at minute 10, repaired at minute 60; cools at 1 °C/min back to 3 °C.
        if s < 3600:
            return compressor_failure(3.0, 600, 0.25, 10.0, s)
        return max(3.0, 10.0 - (s - 3600) / 60)

    events = run(series(profile, 180))
    assert [(e.kind, at_min(e)) for e in events] == [
        ("excursion_raised", 46),  # above 8 °C from minute 31, plus 15
        # ≤ 7 °C (limit 8 − hysteresis 1) from minute 63, held 5 minutes
        ("excursion_cleared", 68),
    ]
    assert events[1].peak_c == 10.0


def test_hovering_near_the_limit_does_not_flap() -> None:
    hot = [Reading(T0 + i * NS_PER_MIN, 9.0) for i in range(20)]
    # After the excursion, readings alternate 7.5 / 8.5 °C for two hours: never ≤ 7 °C, so it
    # stays raised (no clear, no second raise); then a genuine recovery clears it once.
    hover = [Reading(T0 + (20 + i) * NS_PER_MIN, 7.5 if i % 2 else 8.5) for i in range(120)]
    cold = [Reading(T0 + (140 + i) * NS_PER_MIN, 4.0) for i in range(30)]
    events = run(hot + hover + cold)
    assert [(e.kind, at_min(e)) for e in events] == [
        ("excursion_raised", 15),
        ("excursion_cleared", 145),
    ]


def test_many_short_spikes_trip_the_cumulative_rule_once() -> None:
    # 9 °C for 10 minutes in every 30: never 15 consecutive minutes, but each spike banks 10
    # minutes above 8 °C. Six spikes make exactly 60 (not more); the seventh spike's second
    # reading (minute 201) pushes the total over the budget.
    readings = [
        Reading(T0 + i * NS_PER_MIN, 9.0 if (i % 30) >= 20 else 3.0) for i in range(24 * 60)
    ]
    events = run(readings)
    assert [(e.kind, e.rule, at_min(e)) for e in events[:2]] == [
        ("excursion_raised", "cumulative", 201),
        # the spike ends at minute 210; five minutes at 3 °C clear it
        ("excursion_cleared", "cumulative", 215),
    ]
    assert events[0].started_ns == T0 + 20 * NS_PER_MIN
    assert "61 min above 8 °C within 24 h" in events[0].detail
    # A cleared episode starts the budget afresh: the next raise needs another hour banked
    # (spikes from minute 230 on: seven more spikes, second reading of the seventh).
    assert at_min(events[2]) == 411
    # one episode every 210 minutes over the day: minutes 201, 411, … 1251
    assert [e.kind for e in events] == ["excursion_raised", "excursion_cleared"] * 6


def test_frozen_zone_uses_its_own_limit() -> None:
    events = run(series(lambda s: compressor_failure(-20.0, 600, 0.5, -12.0, s), 60), "frozen")
    # above −15 °C from minute 21 (−14.5), plus 15 → minute 36; no hard limit for frozen.
    assert [(e.kind, e.rule, at_min(e)) for e in events] == [("excursion_raised", "duration", 36)]


def test_overrides_change_the_rules() -> None:
    readings = series(lambda s: compressor_failure(3.0, 3600, 0.25, 10.0, s), 240)
    events = run(readings, limit_minutes=5)
    assert at_min(events[0]) == 86
    with pytest.raises(ValueError, match="hard_limit"):
        rules_with_overrides({"chilled": {"hard_limit": 5.0}})


def test_silence_is_an_alert_once_and_resumes() -> None:
    evaluator = Evaluator()
    state = CompartmentState("L1", "0-1", "chilled")
    first = [Reading(T0 + i * NS_PER_MIN, 3.0) for i in range(10)]
    assert evaluator.evaluate(state, first, now_ns=T0 + 15 * NS_PER_MIN) == []
    silent = evaluator.evaluate(state, [], now_ns=T0 + 20 * NS_PER_MIN)
    assert [(e.kind, e.started_ns) for e in silent] == [("sensor_silent", T0 + 9 * NS_PER_MIN)]
    assert evaluator.evaluate(state, [], now_ns=T0 + 60 * NS_PER_MIN) == []
    back = evaluator.evaluate(
        state, [Reading(T0 + 61 * NS_PER_MIN, 3.1)], now_ns=T0 + 62 * NS_PER_MIN
    )
    assert [e.kind for e in back] == ["sensor_resumed"]


def test_already_seen_readings_are_ignored() -> None:
    evaluator = Evaluator()
    state = CompartmentState("L1", "0-1", "chilled")
    readings = series(lambda s: compressor_failure(3.0, 600, 0.25, 10.0, s), 60)
    first = evaluator.evaluate(state, readings)
    assert len(first) == 1
    assert evaluator.evaluate(state, readings) == []  # an overlapping re-query changes nothing


def test_unknown_zone_is_not_evaluated() -> None:
    state = CompartmentState("L1", "0-1", "ambient")
    assert Evaluator().evaluate(state, [Reading(T0, 40.0)], now_ns=T0 + 10**15) == []


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=239), max_size=12))
def test_incremental_runs_equal_one_pass(cuts: list[int]) -> None:
    """Split the series anywhere, persist the state as JSON in between: same events."""

    def profile(s: float) -> float:
        if s < 7200:
            return compressor_failure(3.0, 600, 0.3, 13.0, s)
        return door_spikes(3.0, 6.0, 1800, 900, s)

    readings = series(profile, 240)
    expected = Evaluator().evaluate(CompartmentState("L1", "0-1", "chilled"), readings)
    assert expected  # the scenario must produce something to compare

    got: list[Event] = []
    stored = json.dumps(CompartmentState("L1", "0-1", "chilled").to_dict())
    bounds = [0, *sorted(set(cuts)), len(readings)]
    for lo, hi in itertools.pairwise(bounds):
        state = CompartmentState.from_dict(json.loads(stored))
        got += Evaluator().evaluate(state, readings[lo:hi])
        stored = json.dumps(state.to_dict())
    assert got == expected
