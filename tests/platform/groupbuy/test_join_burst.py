"""The group-join burst path: one shopper's retries racing with the same Idempotency-Key take
one seat and all get the first answer; the route's inputs are checked like any other."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, func, select

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import auth, fixed_spec, make_shop, make_shoppers
from tests.platform.groupbuy.server import running_api
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.groupbuy import services
from tuanbox.groupbuy.models import Group, Member


def test_racing_retries_with_one_key_take_one_seat_and_replay_the_first_answer(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = make_settings(
        database_url=url, redis_url=redis_url, rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:"
    )
    factory = make_session_factory(engines(url), settings)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=100)
        leader, shopper = make_shoppers(s, 2)
        campaign = services.create_campaign(
            s, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=fixed_spec(shop.sku_id)
        )
        group_id = services.open_group(s, campaign_id=campaign.id, user_id=leader, now=utcnow())
        group_id_str = group_id.group.id
    headers = {**auth(settings, shopper), "Idempotency-Key": "tap-tap-tap-0001"}
    with running_api(settings) as base, httpx.Client(base_url=base, timeout=60) as client:

        def join(_: int) -> httpx.Response:
            return client.post(f"/api/v1/groups/{group_id_str}/join", json={}, headers=headers)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(join, range(8)))
        bad = client.post(
            f"/api/v1/groups/{group_id_str}/join",
            json={"qty": 0},
            headers={**auth(settings, shopper), "X-Device-ID": "x"},
        )
    assert Counter(r.status_code for r in answers) == {201: 8}, [r.text for r in answers]
    assert len({r.json()["order_id"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 7
    # Bad input is a 422 problem naming each field, before any seat is looked at.
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in bad.json()["errors"]} == {"qty", "header.X-Device-ID"}
    with session_scope(factory) as s:
        members = s.scalar(
            select(func.count()).select_from(Member).where(Member.group_id == group_id_str)
        )
        group = s.get(Group, group_id_str)
        assert members == 2 and group is not None and group.seats_taken == 2
