"""The platform's error hierarchy; each error has a stable code and becomes an RFC 9457 problem.

    TuanboxError                      500 INTERNAL
    ├── InvalidInputError             422 INVALID_INPUT   (domain-level validation)
    ├── NotFoundError                 404 NOT_FOUND
    ├── ConflictError                 409 CONFLICT         (illegal transition, duplicate, sold out)
    ├── AuthenticationError           401 UNAUTHENTICATED
    ├── PermissionDeniedError         403 FORBIDDEN
    ├── RateLimitedError              429 RATE_LIMITED     (carries retry_after seconds)
    └── DependencyUnavailableError    503 DEPENDENCY_UNAVAILABLE

Feature packages subclass these and override `code` (e.g. `INSUFFICIENT_STOCK`), so clients
branch on `code`, never on the human text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TuanboxError(Exception):
    """Base of every error the platform raises on purpose."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://tuanbox.dev/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidInputError(TuanboxError):
    code = "INVALID_INPUT"
    status = 422
    title = "Invalid input"


class NotFoundError(TuanboxError):
    code = "NOT_FOUND"
    status = 404
    title = "Not found"


class ConflictError(TuanboxError):
    code = "CONFLICT"
    status = 409
    title = "Conflict"


class AuthenticationError(TuanboxError):
    code = "UNAUTHENTICATED"
    status = 401
    title = "Authentication required"


class PermissionDeniedError(TuanboxError):
    code = "FORBIDDEN"
    status = 403
    title = "Forbidden"


class RateLimitedError(TuanboxError):
    code = "RATE_LIMITED"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class DependencyUnavailableError(TuanboxError):
    code = "DEPENDENCY_UNAVAILABLE"
    status = 503
    title = "A service the platform needs is unavailable"
