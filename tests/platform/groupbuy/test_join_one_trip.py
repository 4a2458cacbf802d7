"""Stream join writes in one Redis round trip, against real PostgreSQL and Redis: a group's
seats are in Redis once its opening commits (no database hop at its first join), and the
token's revocation and the per-shopper and per-IP windows are checked by the seat script
itself, with the same answers as before (401, 429 with Retry-After) and no seat spent by a
refused caller."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import (
    auth,
    fixed_spec,
    make_shop,
    make_shoppers,
    queued_join,
)
from tests.platform.groupbuy.server import running_api
from tuanbox.accounts.revocation import PREFIX as REVOKED_PREFIX
from tuanbox.api.redis_async import AsyncRedis
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.groupbuy import admission, seatlua, services
from tuanbox.groupbuy.seats import GroupSeats, prefix_of
from tuanbox.settings import Settings

SIZE = 5


def _settings(url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "redis_url": redis_url,
        "rate_limit_prefix": f"t{uuid.uuid4().hex[:8]}:rl:",
        "group_join_writes": "stream",
        **overrides,
    }
    return make_settings(**values)


def _campaign(settings: Settings, shoppers: int) -> tuple[str, list[str]]:
    """A campaign and its shoppers; no group yet (nothing bound: a seed, like the bench's)."""
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        shop = make_shop(s, stock=1000)
        users = make_shoppers(s, shoppers)
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=fixed_spec(shop.sku_id, members=SIZE),
        )
        campaign_id = campaign.id
    engine.dispose()
    return campaign_id, users


def _open(factory: Callable[[], Any], campaign_id: str, leader: str, *, commit: bool = True) -> str:
    with factory() as s:
        group_id = services.open_group(
            s, campaign_id=campaign_id, user_id=leader, now=utcnow()
        ).group.id
        if commit:
            s.commit()
        else:
            s.rollback()
    return str(group_id)


def test_a_group_is_in_redis_once_its_opening_commits_and_not_before_or_after_a_rollback(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    campaign_id, users = _campaign(settings, 6)
    engine = engines(url)
    seats = GroupSeats(redis.Redis.from_url(redis_url), prefix_of(settings))

    with make_session_factory(engine, settings)() as s:
        opened = services.open_group(s, campaign_id=campaign_id, user_id=users[0], now=utcnow())
        group_id = opened.group.id
        deadline = int(opened.group.deadline_at.timestamp())
        assert seats.seats(group_id)[0] is None  # not before the commit
        s.commit()
    assert seats.seats(group_id) == (SIZE - 1, deadline, {users[0]: "db"})
    # Its first join is one script call: no NOT_LOADED, no database read.
    assert seats.admit(queued_join(group_id, users[1], "k1")).status is seatlua.SeatStatus.ADMITTED

    rolled_back = _open(make_session_factory(engine, settings), campaign_id, users[2], commit=False)
    assert seats.seats(rolled_back)[0] is None
    # Request writes: nobody reads the seats in Redis, so nothing is put there.
    request_mode = _settings(url, redis_url, group_join_writes="request")
    untouched = _open(make_session_factory(engine, request_mode), campaign_id, users[3])
    assert GroupSeats(seats.client, prefix_of(request_mode)).seats(untouched)[0] is None
    # A session without the process's settings (a seed) cannot know: the first join loads it.
    unbound = _open(make_session_factory(engine), campaign_id, users[4])
    assert seats.seats(unbound)[0] is None
    assert seats.admit(queued_join(unbound, users[5], "k5")).status is seatlua.SeatStatus.NOT_LOADED


@contextmanager
def _counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[tuple[Any, ...]], list[str]]]:
    """Every AsyncRedis call made on the event loop (but a script's first NOSCRIPT, once per
    Redis), and every group loaded from the database."""
    calls: list[tuple[Any, ...]] = []
    loads: list[str] = []
    real_call = AsyncRedis.call
    real_load = admission._load

    async def call(self: AsyncRedis, *args: Any) -> Any:
        try:
            answer = await real_call(self, *args)
        except redis.ResponseError as exc:
            if str(exc).startswith("NOSCRIPT"):
                raise  # once per script and Redis (EVAL follows): not a join's cost
            calls.append(args)
            raise
        calls.append(args)
        return answer

    def load(source: Any, seats: Any, group_id: str) -> None:
        loads.append(group_id)
        real_load(source, seats, group_id)

    monkeypatch.setattr(AsyncRedis, "call", call)
    monkeypatch.setattr(admission, "_load", load)
    yield calls, loads


def _of(calls: list[tuple[Any, ...]], user: str) -> int:
    """Round trips made for this shopper (its id is in every one of a join's calls)."""
    return sum(1 for args in calls if any(user in str(a) for a in args))


def test_a_join_is_one_round_trip_and_a_group_opened_through_the_api_needs_no_load(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    campaign_id, users = _campaign(settings, 5)
    # A group opened by a seed (no settings bound): the NOT_LOADED fallback stays.
    seeded = _open(make_session_factory(engines(url)), campaign_id, users[4])
    client = redis.Redis.from_url(redis_url)
    with (
        running_api(settings) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        _counting(monkeypatch) as (calls, loads),
    ):
        opened = http.post(
            f"/api/v1/campaigns/{campaign_id}/groups",
            json={},
            headers={**auth(settings, users[0]), "Idempotency-Key": "open-0"},
        )
        assert opened.status_code == 201, opened.text
        group_id = opened.json()["group"]["id"]

        def post(group: str, user: str, key: str) -> httpx.Response:
            return http.post(
                f"/api/v1/groups/{group}/join",
                json={},
                headers={**auth(settings, user), "Idempotency-Key": key},
            )

        calls.clear()
        first = post(group_id, users[1], "j1")
        assert first.status_code == 202, first.text
        assert first.json()["seats_left"] == SIZE - 2
        assert _of(calls, users[1]) == 1  # revocation, windows and seat: one script call
        assert loads == []  # loaded when it opened
        full = [post(group_id, users[2], "j2"), post(group_id, users[3], "j3")]
        assert [r.status_code for r in full] == [202, 202]
        assert _of(calls, users[2]) == _of(calls, users[3]) == 1

        calls.clear()
        late = post(seeded, users[1], "j-seeded")
        assert late.status_code == 202, late.text
        assert loads == [seeded]
        assert _of(calls, users[1]) == 2  # the checks, then the seat after the load
    # The checks ran once for that join, not again after the load: 2 joins in the window.
    window = f"{settings.rate_limit_prefix}group-join:user:{users[1]}"
    assert client.zcard(window) == 2


def test_revoked_and_rate_limited_callers_get_the_same_answers_and_take_no_seat(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url, group_join_per_user_per_min=3, group_join_per_ip_per_min=6)
    campaign_id, users = _campaign(settings, 8)
    factory = make_session_factory(engines(url), settings)
    groups = [_open(factory, campaign_id, leader) for leader in users[:4]]
    alice, bob, carol, dave = users[4:]
    client = redis.Redis.from_url(redis_url)
    seats = GroupSeats(client, prefix_of(settings))
    stream = seatlua.stream_key(prefix_of(settings))

    def state(group: str) -> tuple[Any, ...]:
        left, _, members = seats.seats(group)
        return left, tuple(sorted(members)), client.xlen(stream)

    with running_api(settings) as base, httpx.Client(base_url=base, timeout=30) as http:

        def post(group: str, user: str) -> httpx.Response:
            return http.post(
                f"/api/v1/groups/{group}/join",
                json={},
                headers={**auth(settings, user), "Idempotency-Key": uuid.uuid4().hex},
            )

        # A revoked token: 401 before anything else, no seat, no window spent.
        client.set(REVOKED_PREFIX + dave, 1, ex=300)
        before = state(groups[0])
        revoked = post(groups[0], dave)
        assert revoked.status_code == 401 and revoked.json()["code"] == "TOKEN_REVOKED"
        assert state(groups[0]) == before
        assert client.zcard(f"{settings.rate_limit_prefix}group-join:user:{dave}") == 0

        # Per shopper: 3 a minute, seat refusals count as before (the window admitted them).
        answers = [post(groups[0], alice), post(groups[0], alice), post(groups[1], alice)]
        assert [r.status_code for r in answers] == [202, 409, 202]
        before = state(groups[2])
        limited = post(groups[2], alice)
        assert state(groups[2]) == before  # refused: no seat, nothing queued
        assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
        user_window = f"{settings.rate_limit_prefix}group-join:user:{alice}"
        oldest = client.zrange(user_window, 0, 0, withscores=True)[0][1]
        seconds, micros = client.time()
        expected = math.ceil((oldest + 60_000_000 - (seconds * 1_000_000 + micros)) / 1e6)
        # The oldest entry's age decides it, in whole seconds rounded up (as check_caller).
        assert int(limited.headers["Retry-After"]) in (expected, expected + 1)
        assert client.zcard(user_window) == 3

        # Per IP: alice's refused try spent nothing of the address's 6; bob uses 3 more.
        assert [post(g, bob).status_code for g in groups[:3]] == [202, 202, 202]
        before = state(groups[3])
        by_ip = post(groups[3], carol)
        assert by_ip.status_code == 429 and by_ip.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(by_ip.headers["Retry-After"]) <= 60
        assert state(groups[3]) == before
        # An unknown group: the windows answer first, as on the request path.
        assert post(str(uuid.uuid4()), carol).status_code == 429


def test_seats_taken_or_freed_in_the_database_are_in_redis_once_committed(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = _settings(url, redis_url)
    campaign_id, users = _campaign(settings, 4)
    group_id = _open(make_session_factory(engines(url), settings), campaign_id, users[0])
    seats = GroupSeats(redis.Redis.from_url(redis_url), prefix_of(settings))
    assert seats.seats(group_id)[0] == SIZE - 1
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        # Without an Idempotency-Key the join is written in the request (201): Redis counts it
        # now, not at the next reconciliation.
        keyless = http.post(
            f"/api/v1/groups/{group_id}/join", json={}, headers=auth(settings, users[1])
        )
        assert keyless.status_code == 201, keyless.text
        left, _, members = seats.seats(group_id)
        assert left == SIZE - 2 and members.get(users[1]) == "db"
        streamed = http.post(
            f"/api/v1/groups/{group_id}/join",
            json={},
            headers={**auth(settings, users[2]), "Idempotency-Key": "s2"},
        )
        assert streamed.status_code == 202 and streamed.json()["seats_left"] == SIZE - 3
        # The keyless joiner leaves: the seat is free in Redis once the leave commits.
        left_group = http.post(f"/api/v1/groups/{group_id}/leave", headers=auth(settings, users[1]))
        assert left_group.status_code == 200, left_group.text
        left, _, members = seats.seats(group_id)
        assert left == SIZE - 2 and users[1] not in members
        # Told twice (a reconciliation got there first): nothing more changes.
        assert not seats.mark(group_id, users[1], taken=False)
        assert seats.seats(group_id)[0] == SIZE - 2
