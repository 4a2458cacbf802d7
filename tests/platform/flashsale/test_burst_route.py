"""The reservation endpoint is served by its BurstRoute, first in the router and inside the
same middleware stack as every route (request id, security headers, problem handlers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tuanbox.api.app import create_app
from tuanbox.api.burst import BurstRoute

PATH = "/api/v1/flash-sales/{sale_id}/reservations"


@pytest.fixture
def client(database_url: str, redis_url: str) -> Iterator[tuple[TestClient, list[str]]]:
    settings = make_settings(
        database_url=database_url,
        redis_url=redis_url,
        rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:",
    )
    app = create_app(settings)
    route = app.router.routes[0]
    assert isinstance(route, BurstRoute) and route.path == PATH
    served: list[str] = []
    endpoint = route.endpoint

    async def counted(request: Request) -> Response:
        served.append(request.url.path)
        return await endpoint(request)

    route.endpoint = counted
    with TestClient(app) as c:
        yield c, served


def test_reservations_go_through_the_burst_route_with_the_app_headers(
    client: tuple[TestClient, list[str]],
) -> None:
    c, served = client
    url = PATH.format(sale_id="s-1")
    anonymous = c.post(url, json={"qty": 1}, headers={"Idempotency-Key": "k-00000001"})
    no_key = c.post(url, json={"qty": 1}, headers={"Authorization": "Bearer x.y.z"})
    assert served == [url, url]
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHENTICATED"
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["field"] == "header.Idempotency-Key"
    health = c.get("/healthz", headers={"X-Request-ID": "probe-1"})
    for answer in (anonymous, no_key, health):
        assert answer.headers["content-type"].startswith(
            "application/problem+json" if answer is not health else "application/json"
        )
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-request-id"]
    assert health.headers["x-request-id"] == "probe-1"


def test_other_methods_fall_through_to_fastapi_routing(
    client: tuple[TestClient, list[str]],
) -> None:
    c, served = client
    url = PATH.format(sale_id="s-1")
    assert c.get(url).status_code == 405  # FastAPI's route of the same path answers
    assert c.post(url + "/x", json={}).status_code == 404
    assert served == []
