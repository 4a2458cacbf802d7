"""Experiments: assignment is deterministic and close to the weights over many users, the
z-test matches a known value, exposures counted in real Redis reach PostgreSQL once, a paid
group order converts its shopper once, and the results add up per arm."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from contextlib import nullcontext

import pytest
import redis
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError, InvalidInputError
from tuanbox.experiments import services
from tuanbox.experiments.domain import assign, two_proportion
from tuanbox.experiments.exposure import count_command, flush
from tuanbox.groupbuy.services import create_campaign, open_group
from tuanbox.settings import Settings

ARMS = [
    {"key": "a", "weight": 50, "value": "Blueberries"},
    {"key": "b", "weight": 30, "value": "Wild blueberries, picked today"},
    {"key": "c", "weight": 20, "value": "蓝莓"},
]


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    users = [str(uuid.UUID(int=i)) for i in range(60_000)]
    first = [assign("exp-1", u, ARMS) for u in users]
    assert first == [assign("exp-1", u, ARMS) for u in users]
    shares = {k: n / len(users) for k, n in Counter(first).items()}
    # 3 standard errors of a proportion at n=60k is under 0.6 points.
    assert abs(shares["a"] - 0.5) < 0.006
    assert abs(shares["b"] - 0.3) < 0.006
    assert abs(shares["c"] - 0.2) < 0.006
    # Another experiment splits the same users independently.
    other = [assign("exp-2", u, ARMS) for u in users]
    agree = sum(x == y for x, y in zip(first, other, strict=True)) / len(users)
    assert abs(agree - (0.5**2 + 0.3**2 + 0.2**2)) < 0.01


def test_two_proportion_z_test_known_value() -> None:
    # 200/1000 against 250/1000: pooled p = 0.225, z = 0.05 / sqrt(.225*.775*.002) = 2.67740,
    # two-sided p = 0.0074196 (statsmodels' proportions_ztest gives the same).
    result = two_proportion(200, 1000, 250, 1000)
    assert result is not None
    assert result.z == pytest.approx(2.67740, abs=1e-5)
    assert result.p_value == pytest.approx(0.0074196, abs=1e-6)
    assert two_proportion(0, 0, 1, 10) is None
    assert two_proportion(0, 10, 0, 10) is None
    assert math.isclose(two_proportion(5, 10, 5, 10).p_value, 1.0)


def _campaign(db_session: Session) -> tuple[str, str, str]:
    shop = make_shop(db_session)
    campaign = create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=3, max_size=3),
    )
    return shop.merchant_id, campaign.id, shop.sku_id


def test_create_refuses_bad_arms_and_a_second_running(db_session: Session) -> None:
    merchant, campaign, _ = _campaign(db_session)
    with pytest.raises(InvalidInputError):
        services.create(
            db_session,
            merchant,
            campaign_id=campaign,
            name="x",
            field="price",
            arms=ARMS,
            min_sample=10,
        )
    with pytest.raises(InvalidInputError):
        services.create(
            db_session,
            merchant,
            campaign_id=campaign,
            name="x",
            field="title",
            arms=ARMS[:1],
            min_sample=10,
        )
    services.create(
        db_session,
        merchant,
        campaign_id=campaign,
        name="x",
        field="title",
        arms=ARMS,
        min_sample=10,
    )
    with pytest.raises(ConflictError):
        services.create(
            db_session,
            merchant,
            campaign_id=campaign,
            name="y",
            field="title",
            arms=ARMS,
            min_sample=10,
        )


def test_exposures_flush_once_and_conversions_count_per_arm(
    db_session: Session, settings: Settings, redis_url: str
) -> None:
    merchant, campaign, _ = _campaign(db_session)
    experiment = services.create(
        db_session,
        merchant,
        campaign_id=campaign,
        name="title test",
        field="title",
        arms=ARMS,
        min_sample=5,
    )
    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(redis_url)
    try:
        shoppers = make_shoppers(db_session, 30)
        arm_of = {u: assign(experiment.id, u, ARMS) for u in shoppers}
        for u in shoppers:
            client.execute_command(*count_command(prefix, experiment.id, arm_of[u]))
        opener = lambda: nullcontext(db_session)  # noqa: E731
        db_session.commit = db_session.flush  # type: ignore[method-assign]
        assert flush(client, opener, prefix) == 30
        assert flush(client, opener, prefix) == 0  # nothing counted twice
        # Counted after a flush: the next flush adds just those.
        client.execute_command(*count_command(prefix, experiment.id, "a"))
        assert flush(client, opener, prefix) == 1
        # A batch whose flush committed but crashed before deleting it: only deleted.
        from tuanbox.experiments.models import ExperimentFlush

        db_session.add(ExperimentFlush(batch_id="batch:crashed"))
        client.hset(f"{prefix}batch:crashed", f"{experiment.id}:a", 99)
        assert flush(client, opener, prefix) == 0
        assert not client.exists(f"{prefix}batch:crashed")
        # Three shoppers start an order; two of them pay.
        buyers = shoppers[:3]
        for n, u in enumerate(buyers):
            joined = open_group(db_session, campaign_id=campaign, user_id=u, now=utcnow())
            if n < 2:
                assert pay(db_session, settings, joined.order_id) == "applied"
        results = {r.key: r for r in services.results(db_session, experiment)}
        exposed = Counter(arm_of.values())
        exposed["a"] += 1
        assert {k: r.exposures for k, r in results.items()} == {k: exposed[k] for k in "abc"}
        assert sum(r.clicks for r in results.values()) == 3
        assert sum(r.conversions for r in results.values()) == 2
        for u in buyers[:2]:
            assert results[arm_of[u]].conversions >= 1
        assert results["a"].test is None and results["a"].under_sample is False
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_price_arm_is_charged_at_join_and_kept_at_close(
    db_session: Session, settings: Settings
) -> None:
    from tuanbox.groupbuy.closing import close_group
    from tuanbox.groupbuy.services import join_group
    from tuanbox.orders.models import Order

    merchant, campaign, _ = _campaign(db_session)  # fixed: 3 members at ¥8.00
    arms = [
        {"key": "list", "weight": 1, "value": "800"},
        {"key": "cut", "weight": 1, "value": "600"},
    ]
    experiment = services.create(
        db_session, merchant, campaign_id=campaign, name="price", field="price", arms=arms,
        min_sample=10,
    )  # fmt: skip
    with pytest.raises(InvalidInputError):
        services.create(
            db_session, merchant, campaign_id=campaign, name="x", field="price",
            arms=[{"key": "a", "weight": 1, "value": "¥6"}, *arms[1:]], min_sample=10,
        )  # fmt: skip
    shoppers = make_shoppers(db_session, 40)
    cut = [u for u in shoppers if assign(experiment.id, u, arms) == "cut"][:2]
    full = [u for u in shoppers if assign(experiment.id, u, arms) == "list"][:1]
    now = utcnow()
    opened = open_group(db_session, campaign_id=campaign, user_id=cut[0], now=now)
    joined = [
        join_group(db_session, group_id=opened.group.id, user_id=u, now=now)
        for u in (cut[1], full[0])
    ]
    assert [opened.unit_price_cents, *(j.unit_price_cents for j in joined)] == [600, 600, 800]
    orders = [opened.order_id, *(j.order_id for j in joined)]
    for order_id in orders:
        assert pay(db_session, settings, order_id) == "applied"
    db_session.refresh(opened.group)
    close_group(db_session, opened.group, utcnow())
    paid = []
    for order_id in orders:
        order = db_session.get(Order, order_id)
        assert order is not None
        db_session.refresh(order)
        paid.append(order.paid_cents - order.refunded_cents)
    assert paid == [600, 600, 800]
    # The closing refund (queued as a Refund row) did not move anyone off their arm's price.
    from sqlalchemy import func, select

    from tuanbox.payments.models import Refund

    queued = db_session.scalar(
        select(func.count()).select_from(Refund).where(Refund.order_id.in_(orders))
    )
    assert queued == 0
