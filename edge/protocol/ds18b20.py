"""DS18B20 readings as the Linux w1-therm driver shows them in ``28-*/w1_slave``.

A reading is two lines::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

The first ends ``YES`` only when the scratchpad CRC matched; ``t=`` is millidegrees Celsius.
"""

from __future__ import annotations

import re

from edge.protocol.errors import FrameError

# 85 °C is the sensor's power-on reset value: a read before any conversion finished.
POWER_ON_RESET_MILLIC = 85000
# What the sensor can measure; a `t=` outside is a corrupted read, not a temperature.
MIN_CELSIUS, MAX_CELSIUS = -55.0, 125.0
# ASCII digits only, and few of them: the kernel prints at most six (-55000 .. 125000).
_T_RE = re.compile(r"\bt=(-?[0-9]{1,7})\s*$")


def crc8(data: bytes) -> int:
    """Dallas/Maxim 1-wire CRC-8 (poly x^8+x^5+x^4+1, reflected 0x8C)."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def parse_w1_slave(text: str, *, reject_power_on: bool = False) -> float:
    """Degrees Celsius, or FrameError W1_CRC / W1_FORMAT / W1_RANGE (/ W1_POWER_ON if asked)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) != 2:
        raise FrameError(f"w1_slave needs 2 lines, got {len(lines)}", code="W1_FORMAT")
    if not lines[0].endswith("YES"):
        if lines[0].endswith("NO"):
            raise FrameError("DS18B20 CRC check failed (line ends NO)", code="W1_CRC")
        raise FrameError(f"unexpected w1_slave first line {lines[0]!r}", code="W1_FORMAT")
    match = _T_RE.search(lines[1])
    if match is None:
        raise FrameError(f"no t=NNNN on w1_slave second line {lines[1]!r}", code="W1_FORMAT")
    millic = int(match.group(1))
    if reject_power_on and millic == POWER_ON_RESET_MILLIC:
        raise FrameError("DS18B20 returned its 85 °C power-on value", code="W1_POWER_ON")
    if not MIN_CELSIUS <= millic / 1000 <= MAX_CELSIUS:
        raise FrameError(f"DS18B20 cannot read t={millic}", code="W1_RANGE")
    return millic / 1000


def render_w1_slave(celsius: float, crc_ok: bool = True) -> str:
    """The file content the kernel would show (12-bit resolution, 1/16 °C steps)."""
    raw = max(-880, min(2000, round(celsius * 16)))  # the sensor's -55..125 °C range
    scratch = bytes(
        (raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, 0x7F, 0xFF, (0x10 - (raw & 0x0F)) & 0xFF, 0x10)
    )
    crc = crc8(scratch)
    if not crc_ok:
        crc ^= 0x5A  # any other value: what a noisy bus delivers
    dump = " ".join(f"{b:02x}" for b in (*scratch, crc))
    verdict = "YES" if crc_ok else "NO"
    # The kernel computes t from the raw 12-bit value, so it is a multiple of 62.5 millidegrees.
    millic = raw * 1000 // 16 if raw >= 0 else -((-raw) * 1000 // 16)
    return f"{dump} : crc={crc:02x} {verdict}\n{dump} t={millic}\n"
