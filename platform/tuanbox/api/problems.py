"""RFC 9457 problem responses for our errors, request validation and unexpected failures."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DisconnectionError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuanbox.api.openapi_problems import document_problems
from tuanbox.errors import RateLimitedError, TuanboxError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tuanbox.api")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(body), status_code=body["status"], media_type=PROBLEM_JSON, headers=headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(TuanboxError)
    async def _ours(request: Request, exc: TuanboxError) -> JSONResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
        )
        if exc.status >= 500:
            log.error("request failed", extra={"code": exc.code, "detail": exc.detail})
        return problem_response(exc.problem(str(request.url.path)), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body"),
                "message": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors()
        ]
        return problem_response(
            {
                "type": "https://tuanbox.dev/problems/invalid-input",
                "title": "Invalid input",
                "status": 422,
                "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                "code": "INVALID_INPUT",
                "instance": str(request.url.path),
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # The framework's only 400: it could not read the body (not UTF-8, a broken
            # multipart form). Invalid input, answered like a body that is not JSON.
            message = f"the request body could not be read: {exc.detail}"
            return problem_response(
                {
                    "type": "https://tuanbox.dev/problems/invalid-input",
                    "title": "Invalid input",
                    "status": 422,
                    "detail": f"body: {message}",
                    "code": "INVALID_INPUT",
                    "instance": str(request.url.path),
                    "errors": [{"field": "body", "message": message, "type": "body_unreadable"}],
                }
            )
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHENTICATED"}.get(
            exc.status_code, f"HTTP_{exc.status_code}"
        )
        return problem_response(
            {
                "type": f"https://tuanbox.dev/problems/{code.lower().replace('_', '-')}",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
                "code": code,
                "instance": str(request.url.path),
            },
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(DisconnectionError)
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
        # The database or Redis went away (restart, failover, a dropped connection) or
        # PostgreSQL aborted the transaction (deadlock, serialisation): nothing was
        # committed, so the client may retry, with its Idempotency-Key where it has one.
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return problem_response(
            {
                "type": "https://tuanbox.dev/problems/dependency-unavailable",
                "title": "A service the platform needs is unavailable",
                "status": 503,
                "detail": "A service the platform needs did not answer; retry shortly.",
                "code": "DEPENDENCY_UNAVAILABLE",
                "instance": str(request.url.path),
            },
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The one place that catches everything: log it with the request id, answer a problem.
        log.exception("unhandled error")
        return problem_response(
            {
                "type": "https://tuanbox.dev/problems/internal",
                "title": "Internal error",
                "status": 500,
                "detail": "An unexpected error occurred; it has been logged.",
                "code": "INTERNAL",
                "instance": str(request.url.path),
            }
        )


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document says what the handlers here answer (see `document_problems`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
