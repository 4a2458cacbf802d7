"""Proof through HTTP: 300 concurrent joins at a group of 5 on a real uvicorn server."""

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
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.groupbuy import services
from tuanbox.groupbuy.models import Group, Member
from tuanbox.orders.models import Order


def test_concurrent_http_joins_never_overfill(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = make_settings(
        database_url=url, redis_url=redis_url, rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:"
    )
    engine = engines(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=100)
        users = make_shoppers(s, 250)
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=fixed_spec(shop.sku_id, members=5),
        )
        group_id = services.open_group(
            s, campaign_id=campaign.id, user_id=users[0], now=utcnow()
        ).group.id
    # 249 joiners, 51 of them twice: 300 requests racing for 4 seats.
    attempts = users[1:] + users[1:52]
    headers = {u: auth(settings, u) for u in users}
    with running_api(settings) as base:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        with httpx.Client(base_url=base, limits=limits, timeout=60) as client:

            def join(i_user: tuple[int, str]) -> tuple[int, str]:
                i, user = i_user
                r = client.post(
                    f"/api/v1/groups/{group_id}/join",
                    json={},
                    headers={**headers[user], "Idempotency-Key": f"join-{i:05d}"},
                )
                return r.status_code, r.json().get("code", "")

            with ThreadPoolExecutor(100) as pool:
                outcomes = Counter(pool.map(join, enumerate(attempts)))
            progress = client.get(f"/api/v1/groups/{group_id}").json()["progress"]
    assert outcomes[(201, "")] == 4, outcomes
    assert set(outcomes) <= {(201, ""), (409, "GROUP_FULL"), (409, "ALREADY_MEMBER")}, outcomes
    assert progress["members"] == 5 and progress["seats_left"] == 0
    with session_scope(factory) as s:
        group = s.get(Group, group_id)
        members = list(s.scalars(select(Member.user_id).where(Member.group_id == group_id)))
        orders = s.scalar(select(func.count()).select_from(Order).where(Order.group_id == group_id))
        sku = s.get(Sku, shop.sku_id)
        assert group is not None and group.seats_taken == 5
        assert len(members) == len(set(members)) == 5 and orders == 5
        assert sku is not None and sku.stock_reserved == 5
    engine.dispose()
