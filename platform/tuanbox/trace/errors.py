"""Trace errors as platform problems (stable codes), and the translation from traceability's."""

from __future__ import annotations

from traceability.errors import ChainUnavailableError, EventValidationError, TraceError
from tuanbox.errors import (
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
    TuanboxError,
)


class InvalidTraceEventError(InvalidInputError):
    """A merchant's EPCIS event broke a rule; ``field`` names where."""

    code = "INVALID_EVENT"
    title = "Invalid EPCIS event"


class LotNotFoundError(NotFoundError):
    code = "LOT_NOT_FOUND"
    title = "Lot not found"


class ChainDownError(DependencyUnavailableError):
    code = "CHAIN_UNAVAILABLE"
    title = "Chain unavailable"


class TraceFailedError(TuanboxError):
    code = "TRACE_ERROR"
    status = 502
    title = "Traceability failure"


def as_problem(exc: TraceError) -> TuanboxError:
    """The platform error for a traceability error (used at the service boundary)."""
    if isinstance(exc, EventValidationError):
        return InvalidTraceEventError(exc.message, field=exc.field, reason=exc.detail)
    if isinstance(exc, ChainUnavailableError):
        return ChainDownError(exc.message)
    return TraceFailedError(exc.message, trace_code=exc.code)
