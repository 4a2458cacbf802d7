"""Rate limits against real Redis: the window admits exactly `limit`, then 429 + Retry-After."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import make_settings
from tests.platform.factories import auth_header
from tuanbox.accounts.deps import Principal
from tuanbox.api.problems import install_problem_handlers
from tuanbox.errors import DependencyUnavailableError, RateLimitedError
from tuanbox.ratelimit import RateLimiter, rate_limit


@pytest.fixture
def client_redis(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_window_admits_limit_then_refuses(client_redis: redis.Redis) -> None:
    limiter = RateLimiter(client_redis, prefix=f"test:{uuid.uuid4().hex}:")
    assert [limiter.check("k", 3, 60) for _ in range(3)] == [2, 1, 0]
    with pytest.raises(RateLimitedError) as info:
        limiter.check("k", 3, 60)
    assert info.value.status == 429 and 1 <= info.value.retry_after <= 60
    # Refused requests do not extend the window, and other keys are independent.
    with pytest.raises(RateLimitedError):
        limiter.check("k", 3, 60)
    assert limiter.check("other", 3, 60) == 2


def test_window_slides(client_redis: redis.Redis) -> None:
    limiter = RateLimiter(client_redis, prefix=f"test:{uuid.uuid4().hex}:")
    limiter.check("k", 1, 0.2)
    with pytest.raises(RateLimitedError):
        limiter.check("k", 1, 0.2)
    # Poll (with a deadline) until the window has moved on; no fixed sleep.
    deadline = time.monotonic() + 5
    while True:
        try:
            limiter.check("k", 1, 0.2)
            break
        except RateLimitedError:
            assert time.monotonic() < deadline, "window never reopened"
            time.sleep(0.02)


def test_redis_down_is_a_503_not_a_free_pass() -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(DependencyUnavailableError):
        RateLimiter(dead).check("k", 1, 1)


def test_dependency_limits_per_user_and_per_ip(redis_url: str) -> None:
    settings = make_settings(rate_limit_prefix=f"test:{uuid.uuid4().hex}:")
    app = FastAPI()
    app.state.settings = settings
    install_problem_handlers(app)

    @app.post(
        "/thing", dependencies=[Depends(rate_limit("thing", per_user=(2, 60), per_ip=(5, 60)))]
    )
    def thing() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(app)
    alice = auth_header(settings, Principal(id="alice", role="shopper"))
    bob = auth_header(settings, Principal(id="bob", role="shopper"))
    assert [client.post("/thing", headers=alice).status_code for _ in range(3)] == [200, 200, 429]
    limited = client.post("/thing", headers=alice)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["code"] == "RATE_LIMITED" and limited.json()["retry_after"] >= 1
    # Bob has his own per-user budget but shares the IP's. Alice's refused requests did not
    # spend it (the user's window is checked first): a shopper hammering behind a carrier NAT
    # must not lock out everyone else on that address. 2 of 5 used so far.
    assert [client.post("/thing", headers=bob).status_code for _ in range(2)] == [200, 200]
    assert client.post("/thing").status_code == 200
    assert client.post("/thing").status_code == 429, "per-IP limit reached"


def test_dependency_reads_limits_from_settings(redis_url: str) -> None:
    settings = make_settings(
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:", group_join_per_ip_per_min=2
    )
    app = FastAPI()
    app.state.settings = settings
    install_problem_handlers(app)
    limit = rate_limit("thing", per_ip=(lambda s: s.group_join_per_ip_per_min, 60))

    @app.post("/thing", dependencies=[Depends(limit)])
    def thing() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(app)
    assert [client.post("/thing").status_code for _ in range(3)] == [200, 200, 429]
