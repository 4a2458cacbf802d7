"""A database or Redis that is down answers 503 with Retry-After, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.support import free_port
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.api.app import create_app
from tuanbox.settings import Settings


def _shopper_header(settings: Settings) -> dict[str, str]:
    token = issue_access_token(settings, Principal(id="u-down", role="shopper"))
    return {"Authorization": f"Bearer {token}"}


def test_a_database_that_does_not_answer_is_a_503_problem() -> None:
    # Nothing listens on this port: every connection attempt is refused, as while
    # PostgreSQL restarts.
    settings = make_settings(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/me", headers=_shopper_header(settings))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "DEPENDENCY_UNAVAILABLE"


def test_redis_that_does_not_answer_is_a_503_problem(database_url: str) -> None:
    settings = make_settings(
        database_url=database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/auth/otp", json={"phone": "+8613800138000"})
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "DEPENDENCY_UNAVAILABLE"
