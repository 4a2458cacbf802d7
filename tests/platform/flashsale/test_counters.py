"""The flash-sale Lua scripts against real Redis: limits, duplicates, release, reload, races."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.lua import ReserveStatus


@pytest.fixture
def counters(redis_url: str) -> Iterator[FlashCounters]:
    c = FlashCounters(redis.Redis.from_url(redis_url), prefix=f"t{uuid.uuid4().hex[:10]}")
    yield c
    c.forget(1)
    c.close()


def test_not_loaded_is_reported(counters: FlashCounters) -> None:
    r = counters.reserve(1, user_id=1, request_id="a", qty=1, per_user_limit=2)
    assert r.status is ReserveStatus.NOT_LOADED


def test_reserve_limit_duplicate_and_sold_out(counters: FlashCounters) -> None:
    counters.load(1, remaining=3, users={}, requests={})
    r = counters.reserve(1, user_id=7, request_id="a", qty=2, per_user_limit=2)
    assert (r.status, r.remaining, r.user_total) == (ReserveStatus.RESERVED, 1, 2)
    assert (
        counters.reserve(1, user_id=7, request_id="a", qty=2, per_user_limit=2).status
        is ReserveStatus.DUPLICATE
    )
    assert (
        counters.reserve(1, user_id=7, request_id="b", qty=1, per_user_limit=2).status
        is ReserveStatus.USER_LIMIT
    )
    assert (
        counters.reserve(1, user_id=8, request_id="c", qty=2, per_user_limit=2).status
        is ReserveStatus.SOLD_OUT
    )
    assert (
        counters.reserve(1, user_id=8, request_id="d", qty=1, per_user_limit=2).status
        is ReserveStatus.RESERVED
    )
    assert counters.snapshot(1) == (0, {7: 2, 8: 1}, {"a": "7:2", "d": "8:1"})


def test_release_restores_exactly_once(counters: FlashCounters) -> None:
    counters.load(1, remaining=1, users={}, requests={})
    assert (
        counters.reserve(1, user_id=7, request_id="a", qty=1, per_user_limit=1).status
        is ReserveStatus.RESERVED
    )
    assert counters.release(1, "a") == 1
    assert counters.release(1, "a") == 0
    assert counters.snapshot(1) == (1, {}, {})
    # The same request id may try again once its first attempt was given back.
    assert (
        counters.reserve(1, user_id=7, request_id="a", qty=1, per_user_limit=1).status
        is ReserveStatus.RESERVED
    )


def test_reload_replaces_everything(counters: FlashCounters) -> None:
    counters.load(1, remaining=9, users={1: 1}, requests={"x": "1:1"})
    counters.load(1, remaining=4, users={2: 3}, requests={"y": "2:3"})
    assert counters.snapshot(1) == (4, {2: 3}, {"y": "2:3"})


def test_concurrent_buyers_never_oversell(counters: FlashCounters) -> None:
    counters.load(1, remaining=50, users={}, requests={})

    def buy(i: int) -> ReserveStatus:
        # 400 users, each sending two distinct requests; limit 1 per user.
        return counters.reserve(
            1, user_id=i % 400, request_id=f"r{i}", qty=1, per_user_limit=1
        ).status

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(buy, range(800)))
    assert results.count(ReserveStatus.RESERVED) == 50
    stock, users, reqs = counters.snapshot(1)
    assert stock == 0 and len(users) == 50 and set(users.values()) == {1} and len(reqs) == 50
