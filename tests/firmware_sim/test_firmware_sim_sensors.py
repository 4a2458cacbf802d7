"""The sensors simulator: DS18B20 sysfs files and a Modbus RTU slave on a real pty."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from edge.protocol import ds18b20, modbus
from edge.protocol.errors import FrameError, ProtocolError
from firmware_sim.errors import SimError
from firmware_sim.scenario import Scenario, scenario_from_dict
from firmware_sim.sensors import SensorsSim

DEADLINE = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scenario(time_scale: float = 60.0) -> Scenario:
    return scenario_from_dict(
        {
            "time_scale": time_scale,
            "sensors": [
                {
                    "id": "chilled",
                    "kind": "w1",
                    "zone": "chilled",
                    "compartment": "0-1",
                    "profile": {
                        "type": "compressor_failure",
                        "base": 3.0,
                        "start_s": 300,
                        "ramp_c_per_min": 1.0,
                        "max": 14.0,
                    },
                },
                {
                    "id": "frozen",
                    "kind": "modbus",
                    "unit": 1,
                    "zone": "frozen",
                    "humidity": 45.5,
                    "profile": {"type": "steady", "celsius": -19.5},
                },
                {
                    "id": "probe2",
                    "kind": "modbus",
                    "unit": 2,
                    "zone": "chilled",
                    "profile": {
                        "type": "compressor_failure",
                        "base": 3.0,
                        "start_s": 300,
                        "ramp_c_per_min": 1.0,
                        "max": 14.0,
                    },
                },
            ],
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(tmp_path: Path, clock: FakeClock) -> Iterator[SensorsSim]:
    sensors = SensorsSim(
        _scenario(),
        w1_dir=tmp_path / "w1",
        modbus_link=tmp_path / "ttyMB",
        interval=0.01,
        clock=clock,
    )
    sensors.start()
    yield sensors
    sensors.stop()


@pytest.fixture
def port(sim: SensorsSim) -> Iterator[serial.Serial]:
    with serial.Serial(str(sim.link), 19200, timeout=0.05) as handle:
        yield handle


def w1_path(sim: SensorsSim, sensor_id: str) -> Path:
    return sim.w1_dir / sim.scenario.sensor(sensor_id).w1_id / "w1_slave"


def read_reply(port: serial.Serial, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + DEADLINE
    while len(data) < size:
        if time.monotonic() > deadline:
            pytest.fail(f"got {data.hex(' ')} of {size} bytes")
        data += port.read(size - len(data))
    return data


def read_registers(port: serial.Serial, unit: int, address: int = 0, count: int = 2) -> list[int]:
    port.write(modbus.read_input_registers_request(unit, address, count))
    head = read_reply(port, 3)
    size = modbus.EXCEPTION_LENGTH if head[1] & 0x80 else modbus.response_length(count)
    frame = head + read_reply(port, size - 3)
    return modbus.parse_read_input_registers_response(frame, unit, count)


def wait_for_w1(path: Path, expected: float) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            if ds18b20.parse_w1_slave(path.read_text()) == expected:
                return
        except (FileNotFoundError, FrameError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never showed {expected} °C")
        time.sleep(0.01)


def test_w1_files_follow_the_profile_in_scaled_time(sim: SensorsSim, clock: FakeClock) -> None:
    path = w1_path(sim, "chilled")
    assert ds18b20.parse_w1_slave(path.read_text()) == 3.0
    clock.now += 10  # × 60 = 600 scenario seconds: 5 min into the failure, +5 °C
    wait_for_w1(path, 8.0)
    clock.now += 30  # 30 more real seconds = 30 scenario minutes: capped at max
    wait_for_w1(path, 14.0)
    assert sim.get_state()["sensors"]["chilled"]["celsius"] == 14.0


def test_modbus_reads(sim: SensorsSim, port: serial.Serial, clock: FakeClock) -> None:
    assert modbus.decode_temperature_humidity(read_registers(port, 1)) == (-19.5, 45.5)
    assert modbus.decode_temperature_humidity(read_registers(port, 2)) == (3.0, 60.0)
    clock.now += 7  # 420 scenario seconds: 2 minutes into the ramp
    assert modbus.decode_temperature_humidity(read_registers(port, 2)) == (5.0, 60.0)
    assert read_registers(port, 1, address=1, count=1) == [455]


def test_modbus_errors(sim: SensorsSim, port: serial.Serial) -> None:
    with pytest.raises(ProtocolError) as info:
        read_registers(port, 1, address=1, count=2)
    assert info.value.code == "MODBUS_EXCEPTION"
    port.write(modbus.read_input_registers_request(9, 0, 2))  # nobody has unit 9
    port.write(b"\x01\x04\x00\x00")  # a torn request the slave must skip
    port.write(b"\xff\xff\xff\xff")
    assert modbus.decode_temperature_humidity(read_registers(port, 1)) == (-19.5, 45.5)


def test_faults(sim: SensorsSim, port: serial.Serial) -> None:
    path = w1_path(sim, "chilled")
    sim.set_fault("chilled", "crc")
    with pytest.raises(FrameError) as info:
        ds18b20.parse_w1_slave(path.read_text())
    assert info.value.code == "W1_CRC"
    sim.set_fault("chilled", "power_on")
    with pytest.raises(FrameError) as info:
        ds18b20.parse_w1_slave(path.read_text(), reject_power_on=True)
    assert info.value.code == "W1_POWER_ON"
    sim.set_fault("chilled", "missing")
    assert not path.parent.exists()
    sim.set_fault("chilled", "none")
    assert ds18b20.parse_w1_slave(path.read_text()) == 3.0

    sim.set_fault("frozen", "crc")
    with pytest.raises(FrameError) as crc:
        read_registers(port, 1)
    assert crc.value.code == "MODBUS_CRC"
    sim.set_fault("frozen", "power_on")
    with pytest.raises(ProtocolError) as exc:
        read_registers(port, 1)
    assert exc.value.code == "MODBUS_EXCEPTION"
    sim.set_fault("frozen", "missing")
    port.write(modbus.read_input_registers_request(1, 0, 2))
    assert read_registers(port, 2)  # unit 1 stays silent, unit 2 still answers
    with pytest.raises(SimError) as err:
        sim.set_fault("nobody", "crc")
    assert err.value.code == "UNKNOWN_SENSOR"
    with pytest.raises(SimError) as err:
        sim.set_fault("frozen", "melted")
    assert err.value.code == "BAD_REQUEST"


def test_stop_removes_w1_tree(tmp_path: Path) -> None:
    sensors = SensorsSim(_scenario(), w1_dir=tmp_path / "w1", modbus_link=tmp_path / "mb")
    sensors.start()
    path = w1_path(sensors, "chilled")
    assert path.exists()
    sensors.stop()
    assert not path.exists()
    assert not (tmp_path / "mb").is_symlink()
