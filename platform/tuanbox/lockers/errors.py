"""Errors of stations, lockers and compartments, each with a stable code."""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError, TuanboxError


class LockerNotFoundError(NotFoundError):
    code = "LOCKER_NOT_FOUND"


class StationNotFoundError(NotFoundError):
    code = "STATION_NOT_FOUND"


class CompartmentNotFoundError(NotFoundError):
    code = "COMPARTMENT_NOT_FOUND"


class LockerExistsError(ConflictError):
    code = "LOCKER_EXISTS"


class BadLayoutError(InvalidInputError):
    code = "BAD_LOCKER_LAYOUT"


class BrokerFilesError(TuanboxError):
    """The broker's files cannot be written as the broker needs them (group, plugin)."""

    code = "BROKER_FILES"
