"""Temperature profiles as pure functions of elapsed (scenario) seconds.

Shared with telemetry for synthetic series: no I/O, no clock, same input → same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from firmware_sim.errors import ScenarioError


def steady(celsius: float, elapsed_s: float) -> float:
    """A well-behaved compartment."""
    del elapsed_s
    return celsius


def door_spikes(
    base: float, spike: float, every_s: float, duration_s: float, elapsed_s: float
) -> float:
    """``base`` with a half-sine bump of height ``spike`` at the end of every period.

    The first bump starts at ``every_s - duration_s``, so a profile starts at ``base``.
    """
    phase = elapsed_s % every_s
    start = every_s - duration_s
    if elapsed_s < 0 or phase < start:
        return base
    return base + spike * math.sin(math.pi * (phase - start) / duration_s)


def compressor_failure(
    base: float, start_s: float, ramp_c_per_min: float, max_celsius: float, elapsed_s: float
) -> float:
    """``base`` until ``start_s``, then a linear warm-up capped at ``max_celsius``."""
    if elapsed_s <= start_s:
        return base
    return min(max_celsius, base + ramp_c_per_min * (elapsed_s - start_s) / 60)


@dataclass(frozen=True)
class Profile:
    """A validated profile from a scenario file; call :meth:`celsius_at`."""

    type: str
    params: dict[str, float]

    def celsius_at(self, elapsed_s: float) -> float:
        p = self.params
        if self.type == "steady":
            return steady(p["celsius"], elapsed_s)
        if self.type == "door_spikes":
            return door_spikes(p["base"], p["spike"], p["every_s"], p["duration_s"], elapsed_s)
        return compressor_failure(p["base"], p["start_s"], p["ramp_c_per_min"], p["max"], elapsed_s)


_FIELDS = {
    "steady": ("celsius",),
    "door_spikes": ("base", "spike", "every_s", "duration_s"),
    "compressor_failure": ("base", "start_s", "ramp_c_per_min", "max"),
}


def profile_from_dict(raw: Any, where: str = "profile") -> Profile:
    """Validate ``{"type": "steady", "celsius": 3}`` and friends; ScenarioError names the field."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a mapping with a 'type'")
    kind = raw.get("type")
    if kind not in _FIELDS:
        raise ScenarioError(f"{where}.type: must be one of {', '.join(_FIELDS)}, not {kind!r}")
    expected = _FIELDS[kind]
    unknown = set(raw) - {"type", *expected}
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    params: dict[str, float] = {}
    for name in expected:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}.{name}: a number is required")
        params[name] = float(value)
    if kind == "door_spikes" and not 0 < params["duration_s"] <= params["every_s"]:
        raise ScenarioError(f"{where}: need 0 < duration_s <= every_s")
    if kind == "compressor_failure":
        if params["ramp_c_per_min"] <= 0 or params["start_s"] < 0:
            raise ScenarioError(f"{where}: need ramp_c_per_min > 0 and start_s >= 0")
        if params["max"] < params["base"]:
            raise ScenarioError(f"{where}.max: must be >= base")
    return Profile(kind, params)
