"""OpenAPI documentation of problem responses: `responses=problems(409, 422)` on a route.

Also `file_response(...)` for routes that answer an image or a CSV instead of JSON, and
`document_problems(spec)`, which makes the document say what the app does on every route."""

from __future__ import annotations

import copy
import json
from typing import Any

_EXAMPLES: dict[int, tuple[str, str, str]] = {
    401: ("Authentication required", "UNAUTHENTICATED", "a bearer access token is required"),
    403: ("Forbidden", "FORBIDDEN", "this action needs one of the roles: admin"),
    404: ("Not found", "NOT_FOUND", "order not found"),
    409: ("Conflict", "ILLEGAL_TRANSITION", "an order cannot go from paid to picked_up"),
    422: ("Invalid input", "INVALID_INPUT", "qty: Input should be greater than 0"),
    429: ("Too many requests", "RATE_LIMITED", "rate limit exceeded; retry in 12 s"),
    503: (
        "Text messages cannot be sent right now",
        "SMS_UNAVAILABLE",
        "the SMS gateway did not answer after 3 attempts (ReadTimeout)",
    ),
}


# What every problem body holds (RFC 9457 members plus our `code`); extension members such as
# `errors` or `unknown_station_ids` may follow, so more properties are allowed.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
    },
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """RFC 9457 problem responses with an example each, for a route's `responses=`."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        title, code, detail = _EXAMPLES[status]
        example: dict[str, Any] = {
            "type": f"https://tuanbox.dev/problems/{code.lower().replace('_', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
        if status == 422:
            example["errors"] = [{"field": "qty", "message": "Input should be greater than 0"}]
        entry: dict[str, Any] = {
            "description": f"{title} (problem; branch on `code`)",
            "content": {
                "application/problem+json": {
                    "schema": copy.deepcopy(PROBLEM_SCHEMA),
                    "example": example,
                }
            },
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out


def file_response(description: str, *media_types: str) -> dict[str, Any]:
    """A 2xx answered as a file (QR image, CSV) rather than JSON, for a route's `responses=`."""
    schema = {"type": "string", "format": "binary"}
    return {
        "description": description,
        "content": {media: {"schema": schema} for media in media_types},
    }


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Make `spec` (FastAPI's document) say what the app answers on every operation.

    FastAPI documents request validation as a JSON `HTTPValidationError`, while the app answers
    it, like every error, as a 422 problem; and an operation that needs a bearer token (its
    `security`) may always answer 401, whether or not its route lists it. Changed in place."""
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            validation = responses.get("422", {}).get("content", {})
            if "application/json" in validation:
                responses["422"] = problems(422)[422]
            if operation.get("security") and "401" not in responses:
                responses["401"] = problems(401)[401]
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{name}"' not in json.dumps(spec):
            schemas.pop(name, None)
    return spec
