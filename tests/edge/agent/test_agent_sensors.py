"""DS18B20 (sysfs tree) and Modbus RTU probes against the sensor simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent.errors import SensorError
from edge.agent.sensors import ModbusReader, Sampler, W1Reader
from edge.agent.settings import SensorConfig
from edge.agent.store import Store
from edge.agent.telemetry import TelemetryBuffer
from firmware_sim.scenario import load_scenario
from firmware_sim.sensors import SensorsSim
from tests.edge.agent.support import agent_settings

ROOT = Path(__file__).resolve().parents[3]


def sensor_configs(sim: SensorsSim) -> list[SensorConfig]:
    """The agent-side config describing the simulator's probes."""
    return [
        SensorConfig(
            id=spec.id,
            kind="ds18b20" if spec.kind == "w1" else "modbus",
            zone=spec.zone,
            compartment=spec.compartment or "",
            w1_id=spec.w1_id if spec.kind == "w1" else None,
            unit=spec.unit if spec.kind == "modbus" else None,
        )
        for spec in sim.scenario.sensors
    ]


@pytest.fixture
def sensors_sim(tmp_path: Path) -> Iterator[SensorsSim]:
    scenario = load_scenario(ROOT / "firmware_sim" / "scenarios" / "steady.yaml")
    sim = SensorsSim(
        scenario, w1_dir=tmp_path / "w1", modbus_link=tmp_path / "modbus", interval=0.1
    )
    sim.start()
    yield sim
    sim.stop()


def _by_id(configs: list[SensorConfig]) -> dict[str, SensorConfig]:
    return {c.id: c for c in configs}


def test_w1_and_modbus_readings(tmp_path: Path, sensors_sim: SensorsSim) -> None:
    probes = _by_id(sensor_configs(sensors_sim))
    w1 = W1Reader(tmp_path / "w1")
    celsius, humidity = w1.read(probes["28-00000a1b2c3d"])
    assert celsius == pytest.approx(3.5, abs=1 / 16) and humidity is None
    modbus = ModbusReader(str(sensors_sim.link), 9600, 0.5)
    try:
        assert modbus.read(probes["frozen-probe"]) == (-20.0, 45.0)
    finally:
        modbus.close()


@pytest.mark.parametrize(
    ("sensor", "fault", "code"),
    [
        ("28-00000a1b2c3d", "crc", "W1_CRC"),
        ("28-00000a1b2c3d", "missing", "SENSOR_MISSING"),
        ("28-00000a1b2c3d", "power_on", "W1_POWER_ON"),
        ("frozen-probe", "crc", "MODBUS_CRC"),
        ("frozen-probe", "missing", "MODBUS_TIMEOUT"),
        ("frozen-probe", "power_on", "MODBUS_EXCEPTION"),
    ],
)
def test_faults_have_stable_codes(
    tmp_path: Path, sensors_sim: SensorsSim, sensor: str, fault: str, code: str
) -> None:
    probe = _by_id(sensor_configs(sensors_sim))[sensor]
    sensors_sim.set_fault(sensor, fault)
    sensors_sim.write_w1_files()
    reader = (
        W1Reader(tmp_path / "w1")
        if probe.kind == "ds18b20"
        else ModbusReader(str(sensors_sim.link), 9600, 0.3)
    )
    try:
        with pytest.raises(SensorError) as err:
            reader.read(probe)
        assert err.value.code == code
    finally:
        reader.close()


def test_sampler_writes_points_and_one_fault_per_spell(
    tmp_path: Path, sensors_sim: SensorsSim
) -> None:
    configs = sensor_configs(sensors_sim)
    settings = agent_settings(tmp_path, sensors=configs)
    store = Store(tmp_path / "s.sqlite3")
    faults: list[dict[str, Any]] = []
    readers = {
        "ds18b20": W1Reader(tmp_path / "w1"),
        "modbus": ModbusReader(str(sensors_sim.link), 9600, 0.3),
    }
    sampler = Sampler(settings, TelemetryBuffer(store, 1000), readers, faults.append)
    try:
        sampler.sample_zone("chilled", 1000)
        sampler.sample_zone("frozen", 1000)
        lines = [line for row in store.telemetry_batch(100) for line in row.text.split("\n")]
        assert len(lines) == 3
        assert any(
            line.startswith("cold_chain,compartment=0-9,")
            and "zone=frozen" in line
            and "celsius=-20.0,humidity=45.0 1000" in line
            for line in lines
        )
        sensors_sim.set_fault("28-00000a1b2c3d", "crc")
        sensors_sim.write_w1_files()
        for at in (2000, 3000, 4000):
            sampler.sample_zone("chilled", at)
        assert [(f["sensor"], f["code"]) for f in faults] == [("28-00000a1b2c3d", "W1_CRC")]
        sensors_sim.set_fault("28-00000a1b2c3d", "none")
        sensors_sim.write_w1_files()
        sampler.sample_zone("chilled", 5000)
        sensors_sim.set_fault("28-00000a1b2c3d", "missing")
        sensors_sim.write_w1_files()
        sampler.sample_zone("chilled", 6000)
        assert [f["code"] for f in faults] == ["W1_CRC", "SENSOR_MISSING"]
    finally:
        sampler.stop()
        store.close()
