"""Errors of the simulators, each with a stable ``code`` the control API sends back.

Hierarchy::

    SimError             (code: e.g. BAD_REQUEST, UNKNOWN_ACTION, NOT_RUNNING)
    ├── DeviceError      (LOCKED, DOOR_CLOSED, BAD_COMPARTMENT, UNKNOWN_SENSOR, UNPLUGGED)
    └── ScenarioError    (BAD_SCENARIO)
"""

from __future__ import annotations


class SimError(Exception):
    code: str = "SIM_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class DeviceError(SimError):
    """The simulated hardware refuses what was asked (a latched door cannot be pulled open)."""

    code = "DEVICE_ERROR"


class ScenarioError(SimError):
    """A sensors scenario file that cannot be used."""

    code = "BAD_SCENARIO"
