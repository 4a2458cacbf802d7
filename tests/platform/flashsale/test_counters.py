"""The flash-sale Lua scripts against real Redis: limits, duplicates, release, reload, races."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.lua import Held, ReserveStatus


@pytest.fixture
def counters(redis_url: str) -> Iterator[FlashCounters]:
    c = FlashCounters(redis.Redis.from_url(redis_url), prefix=f"t{uuid.uuid4().hex[:10]}")
    yield c
    c.forget("s1")
    c.close()


def test_not_loaded_is_reported(counters: FlashCounters) -> None:
    r = counters.reserve("s1", user_id="u1", request_id="a", qty=1, per_user_limit=2)
    assert r.status is ReserveStatus.NOT_LOADED


def test_reserve_limit_duplicate_and_sold_out(counters: FlashCounters) -> None:
    counters.load("s1", remaining=3, users={}, requests={})
    r = counters.reserve("s1", user_id="u7", request_id="a", qty=2, per_user_limit=2)
    assert (r.status, r.remaining, r.user_total) == (ReserveStatus.RESERVED, 1, 2)
    assert (
        counters.reserve("s1", user_id="u7", request_id="a", qty=2, per_user_limit=2).status
        is ReserveStatus.DUPLICATE
    )
    assert (
        counters.reserve("s1", user_id="u7", request_id="b", qty=1, per_user_limit=2).status
        is ReserveStatus.USER_LIMIT
    )
    assert (
        counters.reserve("s1", user_id="u8", request_id="c", qty=2, per_user_limit=2).status
        is ReserveStatus.SOLD_OUT
    )
    assert (
        counters.reserve("s1", user_id="u8", request_id="d", qty=1, per_user_limit=2).status
        is ReserveStatus.RESERVED
    )
    stock, users, reqs = counters.snapshot("s1")
    assert (stock, users) == (0, {"u7": 2, "u8": 1})
    assert {k: (h.user_id, h.qty) for k, h in reqs.items()} == {"a": ("u7", 2), "d": ("u8", 1)}


def test_release_restores_exactly_once(counters: FlashCounters) -> None:
    counters.load("s1", remaining=1, users={}, requests={})
    assert (
        counters.reserve("s1", user_id="u7", request_id="a", qty=1, per_user_limit=1).status
        is ReserveStatus.RESERVED
    )
    assert counters.release("s1", "a") == 1
    assert counters.release("s1", "a") == 0
    assert counters.snapshot("s1") == (1, {}, {})
    # The same request id may try again once its first attempt was given back.
    assert (
        counters.reserve("s1", user_id="u7", request_id="a", qty=1, per_user_limit=1).status
        is ReserveStatus.RESERVED
    )


def test_reload_replaces_everything(counters: FlashCounters) -> None:
    counters.load("s1", remaining=9, users={"u1": 1}, requests={"x": Held("u1", 1, 5)})
    counters.load("s1", remaining=4, users={"u2": 3}, requests={"y": Held("u2", 3, 6)})
    assert counters.snapshot("s1") == (4, {"u2": 3}, {"y": Held("u2", 3, 6)})


def test_concurrent_buyers_never_oversell(counters: FlashCounters) -> None:
    counters.load("s1", remaining=50, users={}, requests={})

    def buy(i: int) -> ReserveStatus:
        # 400 users, each sending two distinct requests; limit 1 per user.
        return counters.reserve(
            "s1", user_id=f"u{i % 400}", request_id=f"r{i}", qty=1, per_user_limit=1
        ).status

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(buy, range(800)))
    assert results.count(ReserveStatus.RESERVED) == 50
    stock, users, reqs = counters.snapshot("s1")
    assert stock == 0 and len(users) == 50 and set(users.values()) == {1} and len(reqs) == 50


def test_load_if_missing_never_overwrites(counters: FlashCounters) -> None:
    assert counters.load("s1", remaining=5, users={}, requests={}, only_if_missing=True)
    r = counters.reserve("s1", user_id="u1", request_id="a", qty=1, per_user_limit=1)
    assert r.status is ReserveStatus.RESERVED
    # A second replica that also found the sale unloaded must not wipe that reservation.
    assert not counters.load("s1", remaining=5, users={}, requests={}, only_if_missing=True)
    stock, users, reqs = counters.snapshot("s1")
    assert (stock, users, set(reqs)) == (4, {"u1": 1}, {"a"})
