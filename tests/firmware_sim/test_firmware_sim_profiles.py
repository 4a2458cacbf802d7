"""Pure temperature profiles and scenario-file validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_sim
from firmware_sim import profiles
from firmware_sim.errors import ScenarioError
from firmware_sim.scenario import load_scenario, scenario_from_dict

SCENARIOS = Path(firmware_sim.__file__).parent / "scenarios"


def test_steady() -> None:
    assert profiles.steady(3.5, 0) == 3.5
    assert profiles.steady(3.5, 10_000) == 3.5


def test_door_spikes_shape() -> None:
    def at(t: float) -> float:
        return profiles.door_spikes(3.0, 4.0, every_s=600, duration_s=60, elapsed_s=t)

    assert at(0) == 3.0
    assert at(539) == 3.0
    assert at(540) == pytest.approx(3.0)
    assert at(570) == pytest.approx(7.0)  # the top of the bump, halfway through the window
    assert 3.0 < at(555) < 7.0
    assert at(600) == 3.0
    assert at(1170) == pytest.approx(7.0)  # periodic


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(t=st.floats(0, 1e6))
def test_door_spikes_stay_between_base_and_peak(t: float) -> None:
    value = profiles.door_spikes(-20.0, 6.0, every_s=300, duration_s=45, elapsed_s=t)
    assert -20.0 <= value <= -14.0 + 1e-9


def test_compressor_failure_ramp() -> None:
    def at(t: float) -> float:
        return profiles.compressor_failure(3.0, 300, 1.0, 14.0, t)

    assert at(0) == 3.0
    assert at(300) == 3.0
    assert at(360) == pytest.approx(4.0)
    assert at(300 + 5 * 60) == pytest.approx(8.0)
    assert at(300 + 60 * 60) == 14.0  # capped


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(a=st.floats(0, 1e5), b=st.floats(0, 1e5))
def test_compressor_failure_never_cools_down(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert profiles.compressor_failure(2.0, 120, 0.5, 20.0, low) <= profiles.compressor_failure(
        2.0, 120, 0.5, 20.0, high
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"type": "warm"}, "profile.type"),
        ({"type": "steady"}, "profile.celsius"),
        ({"type": "steady", "celsius": "cold"}, "profile.celsius"),
        ({"type": "steady", "celsius": 3, "extra": 1}, "extra"),
        (
            {"type": "door_spikes", "base": 3, "spike": 2, "every_s": 10, "duration_s": 20},
            "duration_s",
        ),
        (
            {"type": "compressor_failure", "base": 3, "start_s": 0, "ramp_c_per_min": 0, "max": 9},
            "ramp_c_per_min",
        ),
        (
            {"type": "compressor_failure", "base": 3, "start_s": 0, "ramp_c_per_min": 1, "max": 1},
            "max",
        ),
        ("steady", "mapping"),
    ],
)
def test_profile_validation(raw: object, needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle):
        profiles.profile_from_dict(raw)


def test_shipped_scenarios_load() -> None:
    steady = load_scenario(SCENARIOS / "steady.yaml")
    assert [s.kind for s in steady.sensors] == ["w1", "w1", "modbus"]
    assert steady.sensors[0].w1_id == "28-00000a1b2c3d"
    assert steady.sensors[1].w1_id.startswith("28-")
    assert len(steady.sensors[1].w1_id) == 15
    failure = load_scenario(SCENARIOS / "compressor_failure.yaml")
    assert failure.time_scale == 60
    assert failure.sensor("chilled-probe").unit == 2
    assert failure.sensor("28-00000a1b2c3d").profile.celsius_at(30 * 60) == 14.0


def test_json_scenario_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    sensor = {"id": "p", "kind": "modbus", "unit": 3, "profile": {"type": "steady", "celsius": 1}}
    path.write_text(json.dumps({"sensors": [sensor], "time_scale": 10}))
    assert load_scenario(path).sensors[0].unit == 3
    bad_cases = [
        ({"sensors": []}, "sensors"),
        ({"sensors": [{**sensor, "unit": None}]}, r"sensors\[0\].unit"),
        ({"sensors": [{**sensor, "kind": "zigbee"}]}, r"sensors\[0\].kind"),
        ({"sensors": [sensor, {**sensor, "id": "q"}]}, "units must be unique"),
        ({"sensors": [sensor, sensor]}, "ids must be unique"),
        ({"sensors": [sensor], "time_scale": 0}, "time_scale"),
        ({"sensors": [sensor], "speed": 2}, "speed"),
    ]
    for raw, needle in bad_cases:
        with pytest.raises(ScenarioError, match=needle):
            scenario_from_dict(raw)
    path.write_text("{nope")
    with pytest.raises(ScenarioError, match="does not parse"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")
