"""Tests of the Modbus RTU codec and the DS18B20 w1_slave format."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol import ds18b20, modbus
from edge.protocol.errors import FrameError, ProtocolError


def test_modbus_crc_known_vector() -> None:
    request = modbus.read_input_registers_request(1, 0, 2)
    assert request == bytes.fromhex("01 04 00 00 00 02 71 CB")
    assert modbus.crc16(bytes.fromhex("01 04 00 00 00 02")) == 0xCB71


def test_modbus_request_response_round_trip() -> None:
    request = modbus.parse_request(modbus.read_input_registers_request(7, 0, 2))
    assert request == modbus.ModbusRequest(unit=7, function=4, address=0, count=2)
    registers = modbus.encode_temperature_humidity(-18.5, 65.2)
    assert registers == [0xFF47, 652]
    response = modbus.build_read_input_registers_response(7, registers)
    assert len(response) == modbus.response_length(2)
    values = modbus.parse_read_input_registers_response(response, 7, 2)
    assert modbus.decode_temperature_humidity(values) == (-18.5, 65.2)


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(celsius=st.floats(-3000, 3000), humidity=st.floats(0, 100))
def test_temperature_encoding_round_trips_to_a_tenth(celsius: float, humidity: float) -> None:
    values = modbus.encode_temperature_humidity(celsius, humidity)
    frame = modbus.build_read_input_registers_response(1, values)
    got_c, got_h = modbus.decode_temperature_humidity(
        modbus.parse_read_input_registers_response(frame, 1, 2)
    )
    assert abs(got_c - celsius) <= 0.05 + 1e-9
    assert abs(got_h - humidity) <= 0.05 + 1e-9


def test_modbus_exception_and_errors() -> None:
    exc = modbus.build_exception_response(3, 4, modbus.EXC_ILLEGAL_DATA_ADDRESS)
    assert len(exc) == modbus.EXCEPTION_LENGTH
    with pytest.raises(ProtocolError) as info:
        modbus.parse_read_input_registers_response(exc, 3, 2)
    assert info.value.code == "MODBUS_EXCEPTION"
    good = modbus.build_read_input_registers_response(3, [1, 2])
    cases = {
        "MODBUS_CRC": good[:-1] + bytes([good[-1] ^ 1]),
        "MODBUS_UNIT": modbus.build_read_input_registers_response(4, [1, 2]),
        "MODBUS_LENGTH": modbus.build_read_input_registers_response(3, [1]),
    }
    for code, frame in cases.items():
        with pytest.raises(FrameError) as info:
            modbus.parse_read_input_registers_response(frame, 3, 2)
        assert info.value.code == code
    with pytest.raises(FrameError):
        modbus.parse_request(b"\x01\x04\x00")
    with pytest.raises(ProtocolError):
        modbus.read_input_registers_request(0, 0, 1)


def test_w1_render_and_parse() -> None:
    text = ds18b20.render_w1_slave(23.125)
    assert text == ("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    assert ds18b20.parse_w1_slave(text) == 23.125


@settings(deadline=None)  # a loaded CI box must not fail a slow example
@given(celsius=st.floats(-55, 125))
def test_w1_round_trip_within_resolution(celsius: float) -> None:
    text = ds18b20.render_w1_slave(celsius)
    dump = bytes.fromhex(text.splitlines()[0].split(":")[0])
    assert ds18b20.crc8(dump) == 0  # a correct scratchpad CRC makes the whole 9 bytes sum to 0
    # Half a 1/16 °C step of rounding, plus the kernel truncating to whole millidegrees.
    assert abs(ds18b20.parse_w1_slave(text) - celsius) <= 1 / 32 + 0.001


def test_w1_negative_temperature() -> None:
    assert ds18b20.parse_w1_slave(ds18b20.render_w1_slave(-18.0)) == -18.0
    assert ds18b20.parse_w1_slave(ds18b20.render_w1_slave(-0.5)) == -0.5


def test_w1_errors() -> None:
    with pytest.raises(FrameError) as info:
        ds18b20.parse_w1_slave(ds18b20.render_w1_slave(4.0, crc_ok=False))
    assert info.value.code == "W1_CRC"
    for text in ("", "garbage", "a YES\nb", "x\ny\nz", "a YES\nb t=\n"):
        with pytest.raises(FrameError) as info:
            ds18b20.parse_w1_slave(text)
        assert info.value.code == "W1_FORMAT"
    power_on = ds18b20.render_w1_slave(85.0)
    assert ds18b20.parse_w1_slave(power_on) == 85.0
    with pytest.raises(FrameError) as info:
        ds18b20.parse_w1_slave(power_on, reject_power_on=True)
    assert info.value.code == "W1_POWER_ON"
