"""A small Modbus RTU codec: CRC-16/MODBUS, function 0x04 (read input registers), exceptions.

Register map of our temperature/humidity probes (input registers, function 0x04)::

    reg 0  temperature × 10, signed int16   (-18.5 °C → 0xFF47)
    reg 1  relative humidity × 10, unsigned (65.2 %  → 652)

Frames are ``unit fn data... crc_lo crc_hi`` (CRC transmitted low byte first).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from edge.protocol.errors import FrameError, ProtocolError

FN_READ_INPUT_REGISTERS = 0x04
EXC_ILLEGAL_FUNCTION = 0x01
EXC_ILLEGAL_DATA_ADDRESS = 0x02
EXC_ILLEGAL_DATA_VALUE = 0x03
EXC_DEVICE_FAILURE = 0x04
REG_TEMPERATURE = 0
REG_HUMIDITY = 1
REQUEST_LENGTH = 8
EXCEPTION_LENGTH = 5
MAX_REGISTERS = 125  # per the Modbus spec, so a reply fits one 256-byte RTU frame


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


def check_crc(frame: bytes) -> bytes:
    """Return the body of ``frame`` (without CRC) or raise FrameError(MODBUS_CRC)."""
    if len(frame) < 4:
        raise FrameError(f"Modbus frame too short: {frame.hex(' ')}", code="MODBUS_LENGTH")
    body, received = frame[:-2], struct.unpack("<H", frame[-2:])[0]
    if crc16(body) != received:
        raise FrameError(f"Modbus CRC mismatch: {frame.hex(' ')}", code="MODBUS_CRC")
    return body


def _check_unit(unit: int) -> None:
    if not 1 <= unit <= 247:
        raise ProtocolError(f"Modbus unit {unit} out of range 1-247", code="MODBUS_UNIT")


def read_input_registers_request(unit: int, address: int, count: int) -> bytes:
    """``read_input_registers_request(1, 0, 2) == bytes.fromhex("010400000002 71cb")``."""
    _check_unit(unit)
    if not 0 <= address <= 0xFFFF or not 1 <= count <= MAX_REGISTERS:
        raise ProtocolError(f"bad register range {address}+{count}", code="MODBUS_RANGE")
    return with_crc(struct.pack(">BBHH", unit, FN_READ_INPUT_REGISTERS, address, count))


def response_length(count: int) -> int:
    """Bytes in a normal 0x04 response for ``count`` registers (exceptions are 5 bytes)."""
    return 5 + 2 * count


def parse_read_input_registers_response(frame: bytes, unit: int, count: int) -> list[int]:
    """Registers as unsigned 16-bit ints; exception replies raise MODBUS_EXCEPTION."""
    body = check_crc(frame)
    if body[0] != unit:
        raise FrameError(f"reply from unit {body[0]}, expected {unit}", code="MODBUS_UNIT")
    if body[1] == FN_READ_INPUT_REGISTERS | 0x80:
        exception_code = body[2] if len(body) > 2 else 0
        raise ProtocolError(
            f"unit {unit} answered exception 0x{exception_code:02x}", code="MODBUS_EXCEPTION"
        )
    if body[1] != FN_READ_INPUT_REGISTERS:
        raise FrameError(f"unexpected function 0x{body[1]:02x}", code="MODBUS_FUNCTION")
    if len(body) != 3 + 2 * count or body[2] != 2 * count:
        raise FrameError(f"expected {count} registers: {frame.hex(' ')}", code="MODBUS_LENGTH")
    return list(struct.unpack(f">{count}H", body[3:]))


def to_int16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def decode_temperature_humidity(registers: Sequence[int]) -> tuple[float, float]:
    """``(celsius, humidity_percent)`` from registers 0 and 1."""
    if len(registers) < 2:
        raise FrameError("need registers 0 and 1", code="MODBUS_LENGTH")
    return to_int16(registers[REG_TEMPERATURE]) / 10, registers[REG_HUMIDITY] / 10


def encode_temperature_humidity(celsius: float, humidity: float) -> list[int]:
    """Inverse of :func:`decode_temperature_humidity` (simulator side)."""
    temp = max(-32768, min(32767, round(celsius * 10)))
    hum = max(0, min(1000, round(humidity * 10)))
    return [temp & 0xFFFF, hum]


# --- server side (simulator) ------------------------------------------------------------


@dataclass(frozen=True)
class ModbusRequest:
    unit: int
    function: int
    address: int
    count: int


def parse_request(frame: bytes) -> ModbusRequest:
    """Parse an 8-byte ``unit fn addr(2) count(2) crc(2)`` request (functions 0x01-0x04)."""
    if len(frame) != REQUEST_LENGTH:
        raise FrameError(f"Modbus request must be 8 bytes: {frame.hex(' ')}", code="MODBUS_LENGTH")
    body = check_crc(frame)
    unit, function, address, count = struct.unpack(">BBHH", body)
    return ModbusRequest(unit, function, address, count)


def build_read_input_registers_response(unit: int, values: Sequence[int]) -> bytes:
    _check_unit(unit)
    if not 1 <= len(values) <= MAX_REGISTERS:
        raise ProtocolError(f"cannot send {len(values)} registers", code="MODBUS_RANGE")
    data = struct.pack(f">{len(values)}H", *(v & 0xFFFF for v in values))
    return with_crc(bytes((unit, FN_READ_INPUT_REGISTERS, len(data))) + data)


def build_exception_response(unit: int, function: int, exception_code: int) -> bytes:
    return with_crc(bytes((unit, (function | 0x80) & 0xFF, exception_code)))
