"""The campaign page under a title experiment: each signed-in shopper sees their arm's title
(the same one on every visit), visitors see the campaign's own, and each view of a variant
costs one counter in Redis."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import make_shoppers, token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.experiments import services
from tuanbox.experiments.domain import assign
from tuanbox.groupbuy.models import Campaign
from tuanbox.settings import Settings
from tuanbox.shop.session import ACCESS

ARMS = [
    {"key": "a", "weight": 1, "value": "Plain blueberries AAA"},
    {"key": "b", "weight": 1, "value": "Morning-picked blueberries BBB"},
]


def test_shoppers_see_their_arm_and_exposures_are_counted(
    client: TestClient,
    catalogue: Catalogue,
    db_session: Session,
    settings: Settings,
    redis_url: str,
) -> None:
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    experiment = services.create(
        db_session, campaign.merchant_id, campaign_id=campaign.id, name="t", field="title",
        arms=ARMS, min_sample=10,
    )  # fmt: skip
    users = make_shoppers(db_session, 40)
    by_arm = {assign(experiment.id, u, ARMS): u for u in users}
    assert set(by_arm) == {"a", "b"}
    prefix = client.app.state.settings.experiments_prefix  # type: ignore[attr-defined]
    r = redis.Redis.from_url(redis_url)
    try:
        before = {k: int(r.hget(f"{prefix}live", f"{experiment.id}:{k}") or 0) for k in "ab"}
        for arm, user in by_arm.items():
            client.cookies.set(ACCESS, token_for(settings, user))
            for _ in range(2):
                got = client.get(f"/c/{campaign.id}")
                html = got.text
                assert got.status_code == 200, html[-1500:]
                assert ARMS[0 if arm == "a" else 1]["value"] in html
                assert ARMS[1 if arm == "a" else 0]["value"] not in html
        client.cookies.delete(ACCESS)
        visitor = client.get(f"/c/{campaign.id}").text
        assert campaign.title in visitor and "AAA" not in visitor and "BBB" not in visitor
        after = {k: int(r.hget(f"{prefix}live", f"{experiment.id}:{k}") or 0) for k in "ab"}
        assert {k: after[k] - before[k] for k in "ab"} == {"a": 2, "b": 2}
    finally:
        r.hdel(f"{prefix}live", f"{experiment.id}:a", f"{experiment.id}:b")
        r.close()


def test_a_price_arm_shows_its_price_on_the_ladder(
    client: TestClient, catalogue: Catalogue, db_session: Session, settings: Settings
) -> None:
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    arms = [
        {"key": "list", "weight": 1, "value": "900"},
        {"key": "cut", "weight": 1, "value": "650"},
    ]
    experiment = services.create(
        db_session, campaign.merchant_id, campaign_id=campaign.id, name="p", field="price",
        arms=arms, min_sample=10,
    )  # fmt: skip
    users = make_shoppers(db_session, 40)
    by_arm = {assign(experiment.id, u, arms): u for u in users}
    client.cookies.set(ACCESS, token_for(settings, by_arm["cut"]))
    cut = client.get(f"/c/{campaign.id}").text
    assert "¥6.50" in cut and "¥7.00" not in cut and "¥9.00" not in cut
    client.cookies.set(ACCESS, token_for(settings, by_arm["list"]))
    full = client.get(f"/c/{campaign.id}").text
    assert "¥7.00" in full and "¥9.00" in full and "¥6.50" not in full
