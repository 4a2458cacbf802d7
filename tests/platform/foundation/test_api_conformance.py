"""Schemathesis over the whole /api/v1 document, as anonymous, shopper, staff and ops callers.

No answer is a 500, every error is an RFC 9457 problem, and every answer's status, content
type and body are the ones the document promises. Bounded (a few examples per operation,
derandomized) so that it stays a part of `make test`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import Case, CheckContext
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import create_database, drop_database, make_settings
from tests.platform.accounts.test_role_enforcement import MATRIX, PUBLIC
from tests.platform.factories import auth_header, make_user
from tests.platform.foundation.apiseed import World, seed
from tuanbox.api.app import create_app
from tuanbox.db.engine import bind_settings, make_engine
from tuanbox.settings import Settings

# The fuzzing phase runs as each of these; the boundary (coverage) phase as a caller the
# operation admits, so its cases get past authorization into validation and the domain.
CALLERS = ("anonymous", "shopper", "merchant_staff", "ops")
PREFERENCE = ("shopper", "merchant_staff", "ops", "admin", "courier")
# Deleting one's account as the seeded shopper would sign it out of every later test.
OWN_CALLER = {("DELETE", "/api/v1/me"): "doomed"}
PROBLEM = "application/problem+json"
FUZZ_EXAMPLES = 4


def admitted_caller(method: str, path: str) -> str:
    access = MATRIX.get((method, path), PUBLIC)
    if (method, path) in OWN_CALLER:
        return OWN_CALLER[(method, path)]
    if not isinstance(access, dict) or not access:
        return "anonymous"
    return next(role for role in PREFERENCE if role in access)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, World, Engine]]:
    name = f"tuanbox_api_{uuid.uuid4().hex[:12]}"
    url = create_database(name)
    settings = make_settings(
        database_url=url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path_factory.mktemp("media")),
        # One caller sends every boundary case: let them reach validation, not the limiter.
        orders_create_per_user_per_min=10_000,
        group_join_per_user_per_min=10_000,
        flash_per_user_per_10s=10_000,
        export_per_user_per_hour=1000,
    )
    engine = make_engine(url)
    with Session(engine) as session:
        bind_settings(session, settings)
        world = seed(session)
        world.users["doomed"] = make_user(session, "shopper")
        session.commit()
        for user in world.users.values():
            session.refresh(user)
            session.expunge(user)
    KNOWN.clear()
    KNOWN.update(world.known())
    try:
        yield settings, world, engine
    finally:
        KNOWN.clear()
        engine.dispose()
        drop_database(name)


@pytest.fixture(scope="module")
def app(seeded: tuple[Settings, World, Engine]) -> FastAPI:
    settings, _, engine = seeded
    return create_app(settings, engine=engine)


@pytest.fixture(scope="module", params=CALLERS)
def caller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def headers_for(seeded: tuple[Settings, World, Engine], caller: str) -> dict[str, str]:
    settings, world, _ = seeded
    return {} if caller == "anonymous" else auth_header(settings, world.users[caller])


# The app's own document, read once at collection (settings as in every test, no I/O).
SPEC: dict[str, Any] = create_app(make_settings()).openapi()


def _schema(**phases: bool) -> Any:
    config: dict[str, Any] = {name: {"enabled": on} for name, on in phases.items()}
    if phases.get("coverage"):
        # Two unexpected methods per path are enough to see every 405 is a problem too.
        config["coverage"]["unexpected-methods"] = ["delete", "patch"]
    loaded = schemathesis.openapi.from_dict(
        SPEC, config=schemathesis.Config.from_dict({"phases": config})
    )
    loaded.hook(flatmap_path_parameters)
    return loaded


KNOWN: dict[str, list[str]] = {}


def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Often a parameter names a seeded object (the caller's or another's), not a random one."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        key: st.sampled_from([value, *KNOWN[key]]) if key in KNOWN else st.just(value)
        for key, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


def problem_documents(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx and 5xx is an RFC 9457 problem with type, title, status and code."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    assert media == PROBLEM, f"{response.status_code} answered as {media!r}, not {PROBLEM}"
    body = response.json()
    assert isinstance(body, dict), body
    missing = {"type", "title", "status", "code"} - set(body)
    assert not missing, f"problem lacks {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_documents,
]
SETTINGS = hypothesis.settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
boundaries = _schema(examples=True, coverage=True, fuzzing=False, stateful=False)
fuzzing = _schema(examples=False, coverage=False, fuzzing=True, stateful=False)


@SETTINGS
@boundaries.parametrize()
def test_boundaries_and_examples(
    case: Case, app: FastAPI, seeded: tuple[Settings, World, Engine]
) -> None:
    """Documented examples, then boundary and just-outside values of every parameter and
    field (2^31, empty, too long, NUL, wrong types), as a caller the operation admits."""
    caller = admitted_caller(case.operation.method.upper(), case.operation.path)
    case.call_and_validate(app=app, headers=headers_for(seeded, caller), checks=CHECKS)


@hypothesis.settings(SETTINGS, max_examples=FUZZ_EXAMPLES)
@fuzzing.parametrize()
def test_fuzzing_as_every_caller(
    case: Case, app: FastAPI, seeded: tuple[Settings, World, Engine], caller: str
) -> None:
    """Random valid and invalid requests as anonymous, shopper, merchant staff and ops."""
    case.call_and_validate(app=app, headers=headers_for(seeded, caller), checks=CHECKS)


# Hostile values the generators above may or may not reach, sent on purpose to every operation.
NUL = "a\x00b"
HOSTILE_INTS = (2**31 - 1, 2**31, 2**63, -1)
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
)


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _types(schema: dict[str, Any]) -> set[str]:
    schema = _resolved(schema)
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _types(branch)
    return found


def _variants(method: str, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, Case arguments): a baseline from the documented example and the caller's
    objects, then one hostile value at a time in a path, query or body field."""
    op = SPEC["paths"][path][method.lower()]
    mine = {key: values[0] for key, values in KNOWN.items()}
    params = op.get("parameters", [])
    path_parameters = {p["name"]: mine.get(p["name"], "x") for p in params if p["in"] == "path"}
    media = op.get("requestBody", {}).get("content", {}).get("application/json")
    body: Any = schemathesis.core.NOT_SET
    fields: dict[str, Any] = {}
    if media is not None:
        schema = _resolved(media.get("schema", {}))
        fields = schema.get("properties", {})
        example = media.get("example") or (schema.get("examples") or [{}])[0]
        body = {k: mine.get(k, v) for k, v in example.items()} if isinstance(example, dict) else {}
    base = {"path_parameters": path_parameters, "body": body}
    yield "baseline", base
    for name in path_parameters:
        yield f"NUL in path {name}", {**base, "path_parameters": {**path_parameters, name: NUL}}
    for param in (p for p in params if p["in"] == "query"):
        types = _types(param.get("schema", {}))
        if "string" in types:
            yield f"NUL in query {param['name']}", {**base, "query": {param["name"]: NUL}}
        if "integer" in types:
            for value in HOSTILE_INTS:
                yield f"query {param['name']}={value}", {**base, "query": {param["name"]: value}}
    for name, field in fields.items():
        types = _types(field)
        if "string" in types:
            yield f"NUL in body {name}", {**base, "body": {**body, name: NUL}}
        if "integer" in types:
            for value in HOSTILE_INTS:
                yield f"body {name}={value}", {**base, "body": {**body, name: value}}


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_hostile_values(
    method: str, path: str, app: FastAPI, seeded: tuple[Settings, World, Engine]
) -> None:
    """NUL in every string parameter and field, integers at and past 2^31 and 2^63, as a
    caller the operation admits: a documented answer each time, and NUL always a 422."""
    headers = headers_for(seeded, admitted_caller(method, path))
    operation = fuzzing[path][method]
    for what, arguments in _variants(method, path):
        case = operation.Case(**arguments)
        try:
            response = case.call_and_validate(app=app, headers=headers, checks=CHECKS)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path} with {what}: {exc}") from exc
        if what.startswith("NUL"):
            assert response.status_code == 422, (method, path, what, response.text[:300])
