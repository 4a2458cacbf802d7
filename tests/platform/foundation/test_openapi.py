"""The /api/v1 OpenAPI document is complete: descriptions, examples, schemas, problem responses."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from tests.conftest import make_settings
from tuanbox.accounts.deps import Shopper, get_current_user, require_roles
from tuanbox.api.app import create_app
from tuanbox.api.openapi_problems import problems
from tuanbox.ratelimit.deps import rate_limit

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
PROBLEM = "application/problem+json"
IDEMPOTENCY_HEADER = "idempotency-key"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _header_names(dependant: Dependant) -> set[str]:
    names = {(p.alias or p.name).lower().replace("_", "-") for p in dependant.header_params}
    for sub in dependant.dependencies:
        names |= _header_names(sub)
    return names


def _source(route: Any) -> str:
    try:
        return inspect.getsource(route.original_route.endpoint)
    except (OSError, TypeError):
        return ""


def _expected_problems(route: Any, method: str) -> set[int]:
    """The 4xx a route can answer, inferred from its path, dependencies and body."""
    calls = list(_calls(route.dependant))
    qualnames = [getattr(c, "__qualname__", "") for c in calls]
    expected = {422}
    if get_current_user in calls or any(isinstance(c, HTTPBearer) for c in calls):
        expected.add(401)
    if any(q.startswith("require_roles.") for q in qualnames):
        expected.add(403)
    if "{" in route.path_format:
        expected.add(404)
    if IDEMPOTENCY_HEADER in _header_names(route.dependant):
        expected.add(409)  # a key still in progress is a conflict
    if any(q.startswith("rate_limit.") for q in qualnames) or "limiter" in _source(route):
        expected.add(429)
    # a status the operation's own description promises must be documented too
    expected |= {int(m) for m in re.findall(r"\b(40[1349]|429)\b", route.description or "")}
    return expected


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    resolved: dict[str, Any] = spec
    for part in ref.removeprefix("#/").split("/"):
        resolved = resolved[part]
    return resolved


def _has_example(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    raw = media.get("schema", {})
    schema = _resolve(spec, raw)
    if any(s.get("example") is not None or s.get("examples") for s in (raw, schema)):
        return True
    branches = [
        b for b in schema.get("oneOf") or schema.get("anyOf") or [] if b != {"type": "null"}
    ]
    if branches:
        return all(_has_example(spec, {"schema": branch}) for branch in branches)
    # an object whose every field carries an example (`Field(examples=...)`) is exemplified too
    properties = schema.get("properties") or {}
    return bool(properties) and all(
        _has_example(spec, {"schema": prop}) for prop in properties.values()
    )


def _is_file_upload(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    """A form of nothing but files: there is no JSON value to give as an example."""
    properties = _resolve(spec, media.get("schema", {})).get("properties") or {}
    return bool(properties) and all(
        p.get("format") == "binary" or "contentMediaType" in p for p in properties.values()
    )


def _offences(spec: dict[str, Any], route: Any, method: str) -> list[str]:
    op = spec["paths"][route.path_format][method.lower()]
    found: list[str] = []
    if not (route.summary or route.description):
        found.append("no summary or description (docstring)")
    for media_type, media in op.get("requestBody", {}).get("content", {}).items():
        if not (_has_example(spec, media) or _is_file_upload(spec, media)):
            found.append(f"request body {media_type} has no example")
    for status, response in op.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        media = response.get("content", {}).get("application/json")
        if media is not None and not media.get("schema"):
            found.append(f"{status} application/json response has no schema")
    expected = _expected_problems(route, method)
    if not op.get("parameters") and "requestBody" not in op:
        expected.discard(422)  # nothing to validate
    if expected:
        responses = op.get("responses", {})
        for status in sorted(expected):
            content = responses.get(str(status), {}).get("content", {})
            if PROBLEM not in content:
                found.append(f"{status} not documented as {PROBLEM}")
            elif not _has_example(spec, content[PROBLEM]):
                found.append(f"{status} problem has no example")
            elif status == 429 and "Retry-After" not in responses["429"].get("headers", {}):
                found.append("429 does not document Retry-After")
    if method == "POST" and IDEMPOTENCY_HEADER in _header_names(route.dependant):
        params = [
            p
            for p in op.get("parameters", [])
            if p["in"] == "header" and p["name"].lower() == IDEMPOTENCY_HEADER
        ]
        if not params or not params[0].get("description"):
            found.append("Idempotency-Key header not documented (parameter with a description)")
    return found


def _api_operations(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(method, route) for each documented /api/v1 operation; included routers are walked
    the way FastAPI's own OpenAPI generator walks them, so the route carries its final path."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        if not (route.path_format or "").startswith("/api/v1/"):
            continue
        for method in sorted(route.methods or ()):
            yield method, route


def offenders(app: FastAPI) -> dict[str, list[str]]:
    spec = app.openapi()
    out: dict[str, list[str]] = {}
    for method, route in _api_operations(app):
        found = _offences(spec, route, method)
        if found:
            out[f"{method} {route.path_format}"] = found
    return out


def _report(found: dict[str, list[str]]) -> str:
    lines = [f"{len(found)} operation(s) incompletely documented:"]
    for op, faults in sorted(found.items()):
        lines += [f"  {op}"] + [f"    - {f}" for f in faults]
    return "\n".join(lines)


def test_every_api_operation_is_documented() -> None:
    found = offenders(create_app(make_settings()))
    assert not found, _report(found)


def test_operations_are_found_and_health_is_left_out() -> None:
    app = create_app(make_settings())
    ops = {f"{m} {r.path_format}" for m, r in _api_operations(app)}
    assert "POST /api/v1/groups/{group_id}/join" in ops
    assert "POST /api/v1/payments/{provider}/webhook" in ops
    assert not any(re.search(r" /(healthz|readyz)$", op) for op in ops)
    assert len(ops) > 50


class _Probe(BaseModel):
    qty: int


def test_the_checker_reports_an_undocumented_operation() -> None:
    app = create_app(make_settings())
    router = APIRouter(prefix="/api/v1")

    @router.post("/probe/{thing_id}")
    def probe(
        thing_id: str,
        body: _Probe,
        idempotency_key: str | None = Header(default=None),
    ) -> _Probe:
        return body

    no_retry_after = {"description": "no header", "content": problems(429)[429]["content"]}

    @router.post(
        "/probe-limited",
        status_code=204,
        responses={**problems(422), 429: no_retry_after},
        dependencies=[Depends(rate_limit("probe", per_ip=(1, 60)))],
    )
    def probe_limited(body: Annotated[_Probe, Body(examples=[{"qty": 1}])], user: Shopper) -> None:
        """Documented, but neither its sign-in, its role nor its Retry-After are."""

    @router.get("/probe-image")
    def probe_image() -> Response:
        """A PNG with no declared content."""
        return Response(b"", media_type="image/png")

    @router.get("/probe-read/{thing_id}", dependencies=[Depends(require_roles("ops"))])
    def probe_read(thing_id: str) -> _Probe:
        """A read of someone's thing, its 403 and 404 left out."""
        return _Probe(qty=1)

    @router.get("/probe-hidden", include_in_schema=False)
    def hidden() -> None:
        return None

    app.include_router(router)
    found = offenders(app)
    assert set(found) == {
        "POST /api/v1/probe/{thing_id}",
        "POST /api/v1/probe-limited",
        "GET /api/v1/probe-image",
        "GET /api/v1/probe-read/{thing_id}",
    }, _report(found)
    # 401 (a bearer token required) and 422 are documented by the app itself, on every route.
    assert found["POST /api/v1/probe-limited"] == [
        "403 not documented as application/problem+json",
        "429 does not document Retry-After",
    ]
    assert found["GET /api/v1/probe-read/{thing_id}"] == [
        "403 not documented as application/problem+json",
        "404 not documented as application/problem+json",
    ]
    assert found["GET /api/v1/probe-image"] == ["200 application/json response has no schema"]
    assert found["POST /api/v1/probe/{thing_id}"] == [
        "no summary or description (docstring)",
        "request body application/json has no example",
        "404 not documented as application/problem+json",
        "409 not documented as application/problem+json",
        "Idempotency-Key header not documented (parameter with a description)",
    ]


def test_the_app_documents_401_and_422_as_problems_itself() -> None:
    """FastAPI documents validation as JSON `HTTPValidationError` and leaves 401 to each route;
    the app answers both as problems, and its document says so on every operation."""
    spec = create_app(make_settings()).openapi()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    content = response.get("content", {})
                    assert set(content) == {PROBLEM}, (method, path, status, content)
                    assert content[PROBLEM]["schema"]["required"] == [
                        "type",
                        "title",
                        "status",
                        "code",
                    ]
            if op.get("security"):
                assert "401" in op["responses"], (method, path)
