"""The admission script's rate limits (GCRA over Redis TIME, `lua.ADMIT`) against real Redis:
a burst of `limit`, then one per interval; one number per key however many requests pass;
refused requests move nothing; the per-user limit is checked before the per-IP one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tuanbox.flashsale import lua
from tuanbox.flashsale.counters import Admission
from tuanbox.flashsale.lua import ReserveResult, ReserveStatus

WINDOW_US = 10_000_000


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    p = f"t{uuid.uuid4().hex[:10]}:"
    yield p
    for key in client.scan_iter(f"{p}*"):
        client.delete(key)


def _check(
    client: redis.Redis,
    prefix: str,
    *,
    user: str = "u1",
    per_user: int = 0,
    per_ip: int = 0,
    window_us: int = WINDOW_US,
) -> ReserveResult:
    """One call in "limits" mode: only the checks before the sale."""
    admission = Admission(
        user_id=user,
        request_id=uuid.uuid4().hex,
        qty=1,
        per_user_limit=1,
        user_window=(f"{prefix}user:{user}", per_user) if per_user else None,
        ip_window=(f"{prefix}ip:1.2.3.4", per_ip) if per_ip else None,
        window_us=window_us,
        limits_only=True,
    )
    raw = client.eval(lua.ADMIT, 8, *admission.keys("s1", prefix), *admission.args("s1"))
    return lua.parse_reserve(raw)


def test_a_burst_of_the_limit_then_one_per_interval(client: redis.Redis, prefix: str) -> None:
    results = [_check(client, prefix, per_user=5) for _ in range(6)]
    assert [r.status for r in results[:5]] == [ReserveStatus.CHECKED] * 5
    refused = results[5]
    assert refused.status is ReserveStatus.RATE_LIMITED and refused.remaining == 1
    # It reopens after one interval (10 s / 5), not after the whole window.
    assert 0 < refused.user_total <= 2_000_000


def test_an_uneven_interval_still_admits_exactly_the_limit_at_once(
    client: redis.Redis, prefix: str
) -> None:
    statuses = [_check(client, prefix, per_user=3).status for _ in range(4)]
    assert statuses == [ReserveStatus.CHECKED] * 3 + [ReserveStatus.RATE_LIMITED]


def test_refused_requests_do_not_push_the_reopening_away(client: redis.Redis, prefix: str) -> None:
    key = f"{prefix}user:u1"
    for _ in range(2):
        _check(client, prefix, per_user=2)
    tat = client.get(key)
    for _ in range(20):
        assert _check(client, prefix, per_user=2).status is ReserveStatus.RATE_LIMITED
    assert client.get(key) == tat


def test_it_admits_again_after_the_wait_it_names(client: redis.Redis, prefix: str) -> None:
    window_us = 1_000_000
    for _ in range(4):
        _check(client, prefix, per_user=4, window_us=window_us)
    refused = _check(client, prefix, per_user=4, window_us=window_us)
    assert refused.status is ReserveStatus.RATE_LIMITED
    time.sleep(refused.user_total / 1_000_000 + 0.01)
    assert _check(client, prefix, per_user=4, window_us=window_us).status is (ReserveStatus.CHECKED)


def test_one_number_per_key_however_many_requests_pass(client: redis.Redis, prefix: str) -> None:
    """The sorted-set log kept one member per admitted request: 2,000 here. (A window of
    100 s, so the key outlives the loop however slow the box: it lives until its TAT.)"""
    window_us = 100_000_000
    for _ in range(2000):
        result = _check(client, prefix, per_ip=2000, window_us=window_us)
        assert result.status is ReserveStatus.CHECKED
    key = f"{prefix}ip:1.2.3.4"
    assert client.type(key) == b"string"
    assert int(client.get(key) or 0) > 0  # the TAT, microseconds
    assert 0 < client.pttl(key) <= window_us // 1000


def test_a_refusal_by_the_shopper_limit_spends_nothing_of_the_ip_limit(
    client: redis.Redis, prefix: str
) -> None:
    assert _check(client, prefix, per_user=1, per_ip=3).status is ReserveStatus.CHECKED
    ip_tat = client.get(f"{prefix}ip:1.2.3.4")
    for _ in range(5):
        refused = _check(client, prefix, per_user=1, per_ip=3)
        assert refused.status is ReserveStatus.RATE_LIMITED and refused.remaining == 1
    assert client.get(f"{prefix}ip:1.2.3.4") == ip_tat
    others = [_check(client, prefix, user=f"u{i}", per_user=1, per_ip=3) for i in (2, 3, 4)]
    assert [r.status for r in others] == [ReserveStatus.CHECKED] * 2 + [ReserveStatus.RATE_LIMITED]
    assert others[2].remaining == 2  # the IP's limit
