"""The campaign page under a main-image experiment: a signed-in shopper sees their arm's
image first (the product's other photos after it), the same on every visit; a visitor sees
the campaign's own photos. An arm that is not an uploaded image is refused."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import make_shoppers, token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.catalog.models import ProductImage, Sku
from tuanbox.errors import InvalidInputError
from tuanbox.experiments import services
from tuanbox.experiments.domain import assign
from tuanbox.groupbuy.models import Campaign
from tuanbox.settings import Settings
from tuanbox.shop.session import ACCESS

ARMS = [
    {"key": "a", "weight": 1, "value": "/media/arm-a-main.png"},
    {"key": "b", "weight": 1, "value": "/media/arm-b-main.png"},
]


def _gallery(html: str) -> list[str]:
    return re.findall(r'<img src="(/media/[^"]+)" alt=', html)


def test_shoppers_see_their_arms_main_image(
    client: TestClient, catalogue: Catalogue, db_session: Session, settings: Settings
) -> None:
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    sku = db_session.get(Sku, campaign.sku_id)
    assert sku is not None
    db_session.add_all(
        ProductImage(product_id=sku.product_id, filename=f"own-{n}.png", content_type="image/png",
                     size_bytes=1, position=n)
        for n in range(2)
    )  # fmt: skip
    db_session.flush()
    visitor = _gallery(client.get(f"/c/{campaign.id}").text)
    with pytest.raises(InvalidInputError):
        services.create(
            db_session, campaign.merchant_id, campaign_id=campaign.id, name="img", field="image",
            arms=[ARMS[0], {"key": "b", "weight": 1, "value": "https://elsewhere.example/x.png"}],
            min_sample=10,
        )  # fmt: skip
    experiment = services.create(
        db_session, campaign.merchant_id, campaign_id=campaign.id, name="img", field="image",
        arms=ARMS, min_sample=10,
    )  # fmt: skip
    users = make_shoppers(db_session, 40)
    by_arm = {assign(experiment.id, u, ARMS): u for u in users}
    assert set(by_arm) == {"a", "b"}
    for arm, user in by_arm.items():
        mine = next(a["value"] for a in ARMS if a["key"] == arm)
        other = next(a["value"] for a in ARMS if a["key"] != arm)
        client.cookies.set(ACCESS, token_for(settings, user))
        for _ in range(2):
            shown = _gallery(client.get(f"/c/{campaign.id}").text)
            assert shown[0] == mine and other not in shown
            assert shown[1:] == visitor[1:]  # the other photos as they were
    client.cookies.delete(ACCESS)
    assert _gallery(client.get(f"/c/{campaign.id}").text) == visitor
    assert visitor == ["/media/own-0.png", "/media/own-1.png"]
