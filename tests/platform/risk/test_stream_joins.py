"""Risk control on stream join writes (`TUANBOX_GROUP_JOIN_WRITES=stream`): a join answered
202 from Redis is screened by the joins consumer with the same rules, keys and thresholds as
the request path; a blocked one is refused (403 on replay), filed, and its seat given back."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_user
from tests.platform.groupbuy.factories import make_shop
from tests.platform.risk.fx import headers, reviews, shoppers, signal_values
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.joinstream import JoinStreamConsumer
from tuanbox.groupbuy.models import Member
from tuanbox.groupbuy.seats import GroupSeats, prefix_of
from tuanbox.orders.models import Order
from tuanbox.risk.signals import Hasher
from tuanbox.settings import Settings


def _group(client: TestClient, session: Session, settings: Settings) -> str:
    shop = make_shop(session)
    staff = make_user(session, "merchant_staff", shop.merchant_id)
    now = utcnow()
    campaign = client.post(
        "/api/v1/campaigns",
        headers=auth_header(settings, staff),
        json={
            "sku_id": shop.sku_id,
            "title": "Lychees, ten to a group",
            "kind": "fixed",
            "tiers": [{"members": 10, "price_cents": 800}],
            "max_size": 10,
            "per_user_limit": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
    )
    assert campaign.status_code == 201, campaign.text
    (leader,) = shoppers(session, 1, age_days=60)
    opened = client.post(
        f"/api/v1/campaigns/{campaign.json()['id']}/groups",
        json={"qty": 1},
        headers={**headers(settings, leader), "Idempotency-Key": f"open-{leader.id}"},
    )
    assert opened.status_code == 201, opened.text
    return str(opened.json()["group"]["id"])


def _outcomes(
    client: TestClient, session: Session, settings: Settings, device: str, stream: bool
) -> tuple[list[tuple[int, str]], list[str]]:
    """Five fresh accounts on one phone join one group; each join's final answer."""
    group_id = _group(client, session, settings)
    accounts = shoppers(session, 5)
    consumer = JoinStreamConsumer(
        redis.Redis.from_url(settings.redis_url),
        lambda: nullcontext(session),  # type: ignore[arg-type,return-value]
        settings,
        name="risk-test",
    )
    out: list[tuple[int, str]] = []
    for user in accounts:
        hdrs = headers(settings, user, device)
        if stream:
            hdrs["Idempotency-Key"] = f"join-{user.id}"
        url = f"/api/v1/groups/{group_id}/join"
        r = client.post(url, json={"qty": 1}, headers=hdrs)
        if stream:
            assert r.status_code == 202, r.text  # screened after the answer, by the consumer
            for _ in range(50):
                done = consumer.poll(block_ms=20)
                if done.written or done.refused:
                    break
            r = client.post(url, json={"qty": 1}, headers=hdrs)
        out.append((r.status_code, r.json().get("code", "")))
    return out, [u.id for u in accounts]


def test_stream_joins_are_scored_and_blocked_as_request_joins_are(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.77")
    on_request, _ = _outcomes(client, db_session, settings, "android-farm-0001", stream=False)
    streaming = settings.model_copy(update={"group_join_writes": "stream"})
    client.app.state.settings = streaming  # type: ignore[attr-defined]
    on_stream, users = _outcomes(client, db_session, streaming, "android-farm-0002", stream=True)

    # The same rules fire at the same joins: the fifth account on one phone is refused.
    assert on_stream == on_request, (on_request, on_stream)
    assert on_stream[-1] == (403, "RISK_BLOCKED") and on_stream[0] == (201, "")
    blocked = users[-1]
    (review,) = reviews(db_session, subject_type="user", subject_id=blocked)
    assert review.action == "block" and review.event == "join"
    assert {h["rule"] for h in review.hits} >= {"accounts_per_device"}
    # The refused join left no row, and its seat is free again in Redis.
    assert db_session.scalar(sa.select(sa.func.count()).where(Member.user_id == blocked)) == 0
    assert db_session.scalar(sa.select(sa.func.count()).where(Order.user_id == blocked)) == 0
    seats = GroupSeats(redis.Redis.from_url(settings.redis_url), prefix_of(streaming))
    group_id = db_session.scalar(sa.select(Member.group_id).where(Member.user_id == users[0]))
    assert group_id is not None
    left, _, members = seats.seats(group_id)
    assert blocked not in members and left == 10 - 1 - (len(users) - 1)
    # The consumer recorded the device the request came with (as a blind index).
    assert Hasher(settings).device("android-farm-0002") in signal_values(db_session)
