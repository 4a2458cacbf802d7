"""Sensor scenario files (YAML or JSON): which probes exist and what temperature they see."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from firmware_sim.errors import ScenarioError
from firmware_sim.profiles import Profile, profile_from_dict

W1_ID_RE = re.compile(r"^28-[0-9a-f]{12}$")


@dataclass(frozen=True)
class SensorSpec:
    id: str
    kind: str  # "w1" or "modbus"
    zone: str
    compartment: str | None
    profile: Profile
    unit: int | None = None
    humidity: float = 60.0

    @property
    def w1_id(self) -> str:
        """The sysfs device name: the id itself if it looks like one, else derived from it."""
        if W1_ID_RE.fullmatch(self.id):
            return self.id
        return "28-" + hashlib.sha1(self.id.encode()).hexdigest()[:12]  # noqa: S324 - a name


@dataclass(frozen=True)
class Scenario:
    sensors: tuple[SensorSpec, ...]
    time_scale: float = 1.0

    def sensor(self, sensor_id: str) -> SensorSpec:
        for spec in self.sensors:
            if sensor_id in (spec.id, spec.w1_id):
                return spec
        raise ScenarioError(f"no sensor {sensor_id!r} in the scenario", code="UNKNOWN_SENSOR")


def _sensor(raw: Any, index: int) -> SensorSpec:
    where = f"sensors[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    allowed = {"id", "kind", "unit", "zone", "compartment", "profile", "humidity"}
    unknown = set(raw) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    sensor_id, kind, zone = raw.get("id"), raw.get("kind"), raw.get("zone", "chilled")
    if not isinstance(sensor_id, str) or not sensor_id:
        raise ScenarioError(f"{where}.id: a non-empty string is required")
    if kind not in ("w1", "modbus"):
        raise ScenarioError(f"{where}.kind: must be 'w1' or 'modbus', not {kind!r}")
    if not isinstance(zone, str):
        raise ScenarioError(f"{where}.zone: must be a string")
    unit = raw.get("unit")
    if kind == "modbus" and (
        isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= 247
    ):
        raise ScenarioError(f"{where}.unit: a Modbus unit 1-247 is required for kind modbus")
    compartment = raw.get("compartment")
    if compartment is not None and not isinstance(compartment, str):
        raise ScenarioError(f"{where}.compartment: must be a string like '0-1'")
    humidity = raw.get("humidity", 60.0)
    if isinstance(humidity, bool) or not isinstance(humidity, int | float):
        raise ScenarioError(f"{where}.humidity: must be a number")
    return SensorSpec(
        id=sensor_id,
        kind=kind,
        zone=zone,
        compartment=compartment,
        profile=profile_from_dict(raw.get("profile"), f"{where}.profile"),
        unit=unit if kind == "modbus" else None,
        humidity=float(humidity),
    )


def scenario_from_dict(raw: Any) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError("scenario: must be a mapping with 'sensors'")
    unknown = set(raw) - {"sensors", "time_scale", "description"}
    if unknown:
        raise ScenarioError(f"scenario: unknown field(s) {', '.join(sorted(unknown))}")
    sensors = raw.get("sensors")
    if not isinstance(sensors, list) or not sensors:
        raise ScenarioError("scenario.sensors: a non-empty list is required")
    time_scale = raw.get("time_scale", 1.0)
    if isinstance(time_scale, bool) or not isinstance(time_scale, int | float) or time_scale <= 0:
        raise ScenarioError("scenario.time_scale: a positive number is required")
    specs = tuple(_sensor(item, index) for index, item in enumerate(sensors))
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ScenarioError("scenario.sensors: ids must be unique")
    units = [spec.unit for spec in specs if spec.unit is not None]
    if len(set(units)) != len(units):
        raise ScenarioError("scenario.sensors: Modbus units must be unique on the bus")
    return Scenario(sensors=specs, time_scale=float(time_scale))


def load_scenario(path: str | Path) -> Scenario:
    """Read a ``.yaml``/``.yml`` or ``.json`` scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(f"scenario {path} does not parse: {exc}") from exc
    return scenario_from_dict(raw)
