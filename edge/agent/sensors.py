"""Temperature probes: DS18B20 on the 1-wire sysfs tree and Modbus RTU probes on RS485.

A ``Sampler`` thread reads each zone at its own interval and turns readings into
``cold_chain`` points stamped with the sampling time. A probe that goes bad (missing, CRC,
power-on value, no reply) raises one ``sensor_fault`` event per bad spell, not per sample.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from edge.agent import schema
from edge.agent.errors import SensorError
from edge.agent.settings import EdgeSettings, SensorConfig
from edge.agent.telemetry import TelemetryBuffer
from edge.protocol import ds18b20, modbus
from edge.protocol.errors import ProtocolError

log = logging.getLogger(__name__)

Reading = tuple[float, float | None]  # celsius, humidity percent


class ProbeReader(ABC):
    @abstractmethod
    def read(self, sensor: SensorConfig) -> Reading:
        """One reading now; SensorError with a stable code when it cannot be trusted."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the port, if any."""


class W1Reader(ProbeReader):
    """``<w1_dir>/<w1_id>/w1_slave`` as written by the kernel's w1-therm driver."""

    def __init__(self, w1_dir: Path) -> None:
        self.w1_dir = w1_dir

    def read(self, sensor: SensorConfig) -> Reading:
        path = self.w1_dir / (sensor.w1_id or sensor.id) / "w1_slave"
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise SensorError(f"{path}: {exc.strerror}", code="SENSOR_MISSING") from exc
        try:
            return ds18b20.parse_w1_slave(text, reject_power_on=True), None
        except ProtocolError as exc:
            raise SensorError(f"{sensor.id}: {exc.message}", code=exc.code) from exc


class ModbusReader(ProbeReader):
    """Function 0x04 on an RS485 port, reopened after any serial error."""

    def __init__(self, port: str, baud: int, timeout_s: float) -> None:
        self.port_name, self.baud, self.timeout_s = port, baud, timeout_s
        self._port: serial.Serial | None = None

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                log.debug("closing Modbus port failed", exc_info=True)
            self._port = None

    def _open(self) -> serial.Serial:
        if self._port is None:
            try:
                self._port = serial.Serial(
                    self.port_name, self.baud, timeout=0.02, write_timeout=1.0
                )
            except (serial.SerialException, OSError) as exc:
                raise SensorError(
                    f"Modbus port {self.port_name}: {exc}", code="MODBUS_PORT"
                ) from exc
            self._port.reset_input_buffer()
        return self._port

    def read(self, sensor: SensorConfig) -> Reading:
        if sensor.unit is None:
            raise SensorError(f"{sensor.id}: no Modbus unit configured", code="CONFIG_INVALID")
        try:
            port = self._open()
            port.reset_input_buffer()
            port.write(modbus.read_input_registers_request(sensor.unit, 0, 2))
            reply = self._read_reply(port, modbus.response_length(2))
            registers = modbus.parse_read_input_registers_response(reply, sensor.unit, 2)
            return modbus.decode_temperature_humidity(registers)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise SensorError(f"Modbus port lost: {exc}", code="MODBUS_PORT") from exc
        except ProtocolError as exc:
            raise SensorError(f"{sensor.id}: {exc.message}", code=exc.code) from exc

    def _read_reply(self, port: serial.Serial, length: int) -> bytes:
        data = bytearray()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            data += port.read(max(1, port.in_waiting))
            exception = len(data) >= 2 and data[1] & 0x80
            want = modbus.EXCEPTION_LENGTH if exception else length
            if len(data) >= want:
                return bytes(data[:want])
        raise SensorError("Modbus probe did not answer", code="MODBUS_TIMEOUT")


class Sampler:
    """Reads every zone on its own schedule; faults are reported through ``on_fault``."""

    def __init__(
        self,
        settings: EdgeSettings,
        buffer: TelemetryBuffer,
        readers: dict[str, ProbeReader],
        on_fault: Callable[[dict[str, Any]], None],
        interval_for: Callable[[str], float] | None = None,
    ) -> None:
        self.settings = settings
        self.interval_for = interval_for or settings.zone_interval
        self.buffer = buffer
        self.readers = readers  # kind -> reader
        self.on_fault = on_fault
        self.sensors = settings.sensors
        self.faulty: dict[str, str] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for reader in self.readers.values():
            reader.close()

    def sample_zone(self, zone: str, at_ms: int) -> None:
        lines = []
        for sensor in (s for s in self.sensors if s.zone == zone):
            reader = self.readers.get(sensor.kind)
            try:
                if reader is None:
                    raise SensorError(f"no reader for {sensor.kind}", code="CONFIG_INVALID")
                celsius, humidity = reader.read(sensor)
            except SensorError as exc:
                self._fault(sensor, zone, exc)
                continue
            try:
                lines.append(
                    schema.cold_chain(
                        self.settings.locker_id,
                        sensor.compartment,
                        zone,
                        sensor.id,
                        at_ms,
                        celsius,
                        humidity,
                    )
                )
            except schema.PointError as exc:  # a NaN or out-of-range value from a sick probe
                self._fault(sensor, zone, SensorError(exc.message, code="BAD_POINT"))
                continue
            if self.faulty.pop(sensor.id, None) is not None:
                log.info("sensor %s recovered", sensor.id)
        self.samples += len(lines)
        self.buffer.append(lines)

    def _fault(self, sensor: SensorConfig, zone: str, exc: SensorError) -> None:
        """One ``sensor_fault`` per bad spell (or change of reason), not one per sample."""
        if self.faulty.get(sensor.id) == exc.code:
            return
        self.faulty[sensor.id] = exc.code
        self.on_fault(
            {"sensor": sensor.id, "zone": zone, "compartment": sensor.compartment,
             "code": exc.code, "detail": exc.message[:200]}
        )  # fmt: skip

    def _run(self) -> None:
        zones = sorted({s.zone for s in self.sensors})
        due = dict.fromkeys(zones, time.monotonic())
        while not self._stop.is_set() and zones:
            now = time.monotonic()
            for zone in zones:
                if now >= due[zone]:
                    due[zone] = now + self.interval_for(zone)
                    try:
                        self.sample_zone(zone, int(time.time() * 1000))
                    except Exception:  # supervisor loop: a bad zone must not stop sampling
                        log.exception("sampling zone %s failed", zone)
            self._stop.wait(max(0.01, min(due.values()) - time.monotonic()))
