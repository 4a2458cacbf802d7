"""DS18B20 sysfs files and a Modbus RTU temperature/humidity slave following a scenario.

Each sensor can be given a fault through :meth:`SensorsSim.set_fault`:
``crc`` (w1 line ends NO / Modbus CRC corrupted), ``missing`` (w1 directory removed /
Modbus unit silent), ``power_on`` (w1 reads 85 °C / Modbus exception 0x04), ``none``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.protocol import ds18b20, modbus
from edge.protocol.errors import FrameError
from firmware_sim.control import req_str
from firmware_sim.device import SerialDevice
from firmware_sim.errors import ScenarioError, SimError
from firmware_sim.scenario import Scenario, SensorSpec

FAULTS = ("none", "crc", "missing", "power_on")


class SensorsSim(SerialDevice):
    """Writes ``w1_dir/28-*/w1_slave`` every ``interval`` s and answers Modbus on a pty."""

    name = "sensors"

    def __init__(
        self,
        scenario: Scenario,
        *,
        w1_dir: str | os.PathLike[str],
        modbus_link: str | os.PathLike[str],
        interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(modbus_link, clock=clock)
        self.scenario = scenario
        self.w1_dir = Path(w1_dir)
        self.interval = interval
        self.faults: dict[str, str] = {spec.id: "none" for spec in scenario.sensors}
        self._started_at = self.clock()
        self._next_write = self._started_at
        self._rx = bytearray()
        self.requests_answered = 0

    def start(self) -> None:
        self._started_at = self.clock()
        self._next_write = self._started_at
        self.w1_dir.mkdir(parents=True, exist_ok=True)
        self.write_w1_files()
        super().start()

    def stop(self) -> None:
        super().stop()
        for spec in self.scenario.sensors:
            if spec.kind == "w1":
                shutil.rmtree(self.w1_dir / spec.w1_id, ignore_errors=True)

    # --- the scenario clock ---------------------------------------------------------

    def elapsed(self) -> float:
        """Scenario seconds since start: real seconds × ``time_scale``."""
        return (self.clock() - self._started_at) * self.scenario.time_scale

    def celsius(self, sensor_id: str) -> float:
        return self.scenario.sensor(sensor_id).profile.celsius_at(self.elapsed())

    # --- 1-wire ---------------------------------------------------------------------

    def write_w1_files(self) -> None:
        """Render every w1 sensor now (atomic rename, so a reader never sees half a file)."""
        with self.lock:
            elapsed = self.elapsed()
            for spec in self.scenario.sensors:
                if spec.kind == "w1":
                    self._write_w1(spec, elapsed)

    def _write_w1(self, spec: SensorSpec, elapsed: float) -> None:
        device = self.w1_dir / spec.w1_id
        fault = self.faults[spec.id]
        if fault == "missing":
            shutil.rmtree(device, ignore_errors=True)
            return
        celsius = 85.0 if fault == "power_on" else spec.profile.celsius_at(elapsed)
        device.mkdir(parents=True, exist_ok=True)
        tmp = device / ".w1_slave.tmp"
        tmp.write_text(ds18b20.render_w1_slave(celsius, crc_ok=fault != "crc"))
        os.replace(tmp, device / "w1_slave")

    def on_tick(self, now: float) -> None:
        if now >= self._next_write:
            self._next_write = now + self.interval
            self.write_w1_files()

    # --- Modbus ---------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        # Requests are fixed 8-byte frames; slide one byte at a time until a CRC matches.
        self._rx.extend(data)
        while len(self._rx) >= modbus.REQUEST_LENGTH:
            candidate = bytes(self._rx[: modbus.REQUEST_LENGTH])
            try:
                request = modbus.parse_request(candidate)
            except FrameError:
                del self._rx[0]
                continue
            del self._rx[: modbus.REQUEST_LENGTH]
            reply = self._answer(request)
            if reply is not None:
                self.send(reply)
                self.requests_answered += 1

    def _answer(self, request: modbus.ModbusRequest) -> bytes | None:
        spec = next((s for s in self.scenario.sensors if s.unit == request.unit), None)
        if spec is None or self.faults[spec.id] == "missing":
            return None  # nobody with that address on the bus
        fault = self.faults[spec.id]
        if request.function != modbus.FN_READ_INPUT_REGISTERS:
            return modbus.build_exception_response(
                request.unit, request.function, modbus.EXC_ILLEGAL_FUNCTION
            )
        if request.count < 1 or request.address + request.count > 2:
            return modbus.build_exception_response(
                request.unit, request.function, modbus.EXC_ILLEGAL_DATA_ADDRESS
            )
        if fault == "power_on":
            return modbus.build_exception_response(
                request.unit, request.function, modbus.EXC_DEVICE_FAILURE
            )
        registers = modbus.encode_temperature_humidity(
            spec.profile.celsius_at(self.elapsed()), spec.humidity
        )
        reply = modbus.build_read_input_registers_response(
            request.unit, registers[request.address : request.address + request.count]
        )
        if fault == "crc":
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
        return reply

    # --- control --------------------------------------------------------------------

    def set_fault(self, sensor_id: str, fault: str) -> None:
        if fault not in FAULTS:
            raise SimError(f"fault must be one of {', '.join(FAULTS)}", code="BAD_REQUEST")
        with self.lock:
            try:
                spec = self.scenario.sensor(sensor_id)
            except ScenarioError as exc:
                raise SimError(str(exc), code=exc.code) from exc
            self.faults[spec.id] = fault
            if spec.kind == "w1":
                self._write_w1(spec, self.elapsed())

    def get_state(self) -> dict[str, Any]:
        with self.lock:
            elapsed = self.elapsed()
            return {
                "elapsed_s": elapsed,
                "modbus_link": str(self.link),
                "pty": self.pty_path,
                "w1_dir": str(self.w1_dir),
                "sensors": {
                    spec.id: {
                        "kind": spec.kind,
                        "w1_id": spec.w1_id if spec.kind == "w1" else None,
                        "unit": spec.unit,
                        "zone": spec.zone,
                        "compartment": spec.compartment,
                        "celsius": spec.profile.celsius_at(elapsed),
                        "fault": self.faults[spec.id],
                    }
                    for spec in self.scenario.sensors
                },
            }

    def handle_control(self, request: dict[str, Any]) -> Any:
        action = request.get("action")
        if action == "get_state":
            return self.get_state()
        if action == "fault":
            self.set_fault(req_str(request, "sensor"), req_str(request, "fault"))
            return None
        if action == "unplug":
            seconds = request.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise SimError("seconds must be a number", code="BAD_REQUEST")
            self.unplug(float(seconds))
            return None
        raise SimError(
            f"unknown action {action!r}; one of get_state, fault, unplug", code="UNKNOWN_ACTION"
        )
