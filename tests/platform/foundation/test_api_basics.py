"""Problem responses, request ids and health endpoints against the real services."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_user
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.errors import ConflictError, RateLimitedError
from tuanbox.logs import JsonFormatter, request_id


class _Thing(BaseModel):
    name: str
    qty: int


def _app_with_probe_routes(engine: Engine, **overrides: object) -> TestClient:
    app = create_app(make_settings(**overrides), engine=engine)
    router = APIRouter()

    @router.post("/probe/things")
    def make_thing(thing: _Thing) -> _Thing:
        return thing

    @router.get("/probe/conflict")
    def conflict() -> None:
        raise ConflictError("the group is already full", group_id="g1")

    @router.get("/probe/limited")
    def limited() -> None:
        raise RateLimitedError("slow down", retry_after=7)

    @router.get("/probe/boom")
    def boom() -> None:
        raise RuntimeError("db password is hunter2")

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def _bearer(role: str) -> dict[str, str]:
    token = issue_access_token(make_settings(), Principal(f"{role}-1", role))
    return {"Authorization": f"Bearer {token}"}


def test_errors_are_rfc9457_problems(engine: Engine) -> None:
    client = _app_with_probe_routes(engine)
    r = client.get("/probe/conflict")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "CONFLICT" and body["status"] == 409
    assert body["detail"] == "the group is already full" and body["group_id"] == "g1"
    assert body["instance"] == "/probe/conflict"

    r = client.get("/probe/limited")
    assert r.status_code == 429 and r.headers["retry-after"] == "7"

    r = client.get("/probe/boom")
    assert r.status_code == 500 and r.json()["code"] == "INTERNAL"
    assert "hunter2" not in r.text  # internals are logged, not leaked

    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_validation_errors_name_the_field(engine: Engine) -> None:
    client = _app_with_probe_routes(engine)
    r = client.post("/probe/things", json={"name": "apples", "qty": "many"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "INVALID_INPUT"
    assert [e["field"] for e in body["errors"]] == ["qty"]


def test_request_id_is_echoed_and_generated(engine: Engine) -> None:
    client = _app_with_probe_routes(engine)
    assert client.get("/healthz", headers={"X-Request-ID": "abc123"}).headers["x-request-id"] == (
        "abc123"
    )
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_json_logs_carry_the_request_id() -> None:
    token = request_id.set("rid-42")
    try:
        record = logging.LogRecord("tuanbox.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
        from tuanbox.logs import _RequestIdFilter

        _RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["msg"] == "hello w" and line["request_id"] == "rid-42" and line["level"] == "info"


def test_healthz(engine: Engine) -> None:
    assert _app_with_probe_routes(engine).get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_every_real_service(
    engine: Engine, redis_url: str, mqtt_broker: object, influx_url: str, anvil_url: str
) -> None:
    r = _app_with_probe_routes(engine).get("/readyz", headers=_bearer("ops"))
    body = r.json()
    assert r.status_code == 200, body
    assert set(body["checks"]) == {"database", "redis", "mqtt", "influxdb", "chain"}
    assert all(c["ok"] for c in body["checks"].values())


@pytest.fixture
def admin_db(fresh_database: Callable[[], str]) -> Iterator[tuple[Engine, dict[str, str]]]:
    """A database with a real admin: with Redis down, the token's revocation check reads it."""
    engine = make_engine(fresh_database())
    try:
        with make_session_factory(engine)() as session:
            admin = make_user(session, "admin")
            session.commit()
            headers = auth_header(make_settings(), admin)
        yield engine, headers
    finally:
        engine.dispose()


def test_readyz_answers_even_when_the_token_cannot_be_checked(
    admin_db: tuple[Engine, dict[str, str]],
) -> None:
    """Redis and the database both down, so the token's revocation check cannot run: still
    the readiness answer, never a 500 (details only if the token could be checked)."""
    _engine, admin = admin_db
    port = _closed_port()
    dead = make_engine(f"postgresql://postgres@127.0.0.1:{port}/test")
    try:
        client = _app_with_probe_routes(dead, redis_url=f"redis://127.0.0.1:{port}/0")
        r = client.get("/readyz", headers=admin)
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
    finally:
        dead.dispose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("name", "override"),
    [
        ("redis", {"redis_url": "redis://127.0.0.1:{port}/0"}),
        ("mqtt", {"mqtt_port": "{port}"}),
        ("influxdb", {"influx_url": "http://127.0.0.1:{port}"}),
        ("chain", {"chain_rpc_url": "http://127.0.0.1:{port}"}),
    ],
)
def test_readyz_is_503_naming_the_service_that_is_down(
    admin_db: tuple[Engine, dict[str, str]], name: str, override: dict[str, str]
) -> None:
    engine, admin = admin_db
    port = _closed_port()
    values = {k: v.format(port=port) for k, v in override.items()}
    client = _app_with_probe_routes(engine, **values)
    r = client.get("/readyz", headers=admin)
    body = r.json()
    assert r.status_code == 503
    assert body["checks"][name]["ok"] is False and body["checks"][name]["error"]
    assert [k for k, v in body["checks"].items() if not v["ok"]] == [name]
    # Anyone else learns only that the process is not ready: no names, hosts or errors.
    for headers in (
        {},
        _bearer("shopper"),
        _bearer("merchant_staff"),
        {"Authorization": "Bearer x"},
    ):
        r = client.get("/readyz", headers=headers)
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}, headers


def test_unconfigured_services_are_not_checked(engine: Engine) -> None:
    client = _app_with_probe_routes(engine, influx_url=None, chain_rpc_url=None)
    r = client.get("/readyz", headers=_bearer("ops"))
    assert set(r.json()["checks"]) == {"database", "redis", "mqtt"}


def test_readyz_tells_anonymous_callers_only_the_state(
    engine: Engine, redis_url: str, mqtt_broker: object, influx_url: str, anvil_url: str
) -> None:
    r = _app_with_probe_routes(engine).get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert r.headers["cache-control"] == "no-store"
