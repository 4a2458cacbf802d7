"""Attacks on the address, payer and device-decline rules, through the HTTP API.

Each rule of `tuanbox.risk.rules` has an attack of its own here or in the neighbouring
files: a device farm (`test_flash_farm`), a sign-up burst and card testing on one account
(`test_account_attacks`), a linked group (`test_linked_group`), a bot on one server
address (`test_ip_attack`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.fulfilment.fx import make_station
from tests.platform.groupbuy.factories import make_shop
from tests.platform.risk.fx import (
    checkout,
    decline_over_webhook,
    headers,
    hit,
    pay_over_webhook,
    reviews,
    shoppers,
)
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


def _order(session: Session, order_id: str) -> Order:
    return session.scalars(
        sa.select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).one()


def _place(
    client: TestClient, sku_id: str, hdrs: dict[str, str], station_id: str | None = None
) -> str:
    body = {"sku_id": sku_id, "qty": 1, "station_id": station_id}
    r = client.post("/api/v1/orders", json=body, headers=hdrs)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_five_accounts_delivering_to_one_flat_are_held_once_they_order_ten_times(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """A reseller keeps five accounts (each on its own phone) that all deliver to one flat,
    the address typed differently each time, and buys twice with each. A household of three
    accounts at another address ordering as often is left alone."""
    client = client_at("203.0.113.90")
    shop = make_shop(db_session)
    spellings = [
        "Sunshine Garden Bldg 5, Room 301",
        "sunshine garden bldg 5, room 301",
        "SUNSHINE GARDEN BLDG 5,  ROOM 301",
        " Sunshine Garden Bldg 5, Room 301 ",
        "Sunshine  Garden  Bldg 5, Room 301",
    ]
    ring = [
        (user, headers(settings, user, f"android-flat-{i:04d}"))
        for i, user in enumerate(shoppers(db_session, 5, age_days=90))
    ]
    for (_, hdrs), text in zip(ring, spellings, strict=True):
        saved = client.post("/api/v1/me/addresses", json={"text": text}, headers=hdrs)
        assert saved.status_code == 201, saved.text

    placed = [_place(client, shop.sku_id, hdrs) for _ in range(2) for _, hdrs in ring]
    held = [order_id for order_id in placed if _order(db_session, order_id).risk_hold]
    # Five accounts at one address score 40, ten orders there 20 more: the tenth is held.
    assert held == placed[9:]
    (review,) = reviews(db_session, subject_type="order", subject_id=placed[9])
    assert review.action == "review" and review.score == 60
    accounts = hit(review, "accounts_per_address")
    assert accounts["count"] == 5 and accounts["threshold"] == 4
    assert set(accounts["accounts"]) == {user.id for user, _ in ring}
    orders = hit(review, "orders_per_address")
    # The held order is the review's subject; its evidence cites the nine before it.
    assert orders["count"] == 10 and set(orders["orders"]) == set(placed[:9])
    assert "unshine" not in json.dumps(review.hits).lower()

    # A family of three at its own address, ordering twelve times in a day: 20 points.
    family = [
        (user, headers(settings, user, f"ios-home-{i:04d}"))
        for i, user in enumerate(shoppers(db_session, 3, age_days=400))
    ]
    for _, hdrs in family:
        saved = client.post("/api/v1/me/addresses", json={"text": "Lakeside 7, Unit 2"},
                            headers=hdrs)  # fmt: skip
        assert saved.status_code == 201
    theirs = [_place(client, shop.sku_id, hdrs) for _ in range(4) for _, hdrs in family]
    assert not any(_order(db_session, order_id).risk_hold for order_id in theirs)
    assert reviews(db_session, subject_type="order") == [review]


def test_one_wallet_paying_for_a_third_account_holds_that_order_for_review(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """A scalper pays for the orders of several accounts (own phones, own addresses) from one
    WeChat wallet. Two accounts on one wallet is a couple; the third is held, paid, until ops
    decide."""
    client = client_at("203.0.113.91")
    shop = make_shop(db_session)
    station = make_station(db_session)  # its merchant confirms paid orders at once
    wallet = "o6_scalper_wallet_0000001"
    results = []
    for i, user in enumerate(shoppers(db_session, 3, age_days=120)):
        hdrs = headers(settings, user, f"android-wallet-{i:04d}")
        order_id = _place(client, shop.sku_id, hdrs, station.id)
        intent = checkout(client, order_id, hdrs)
        assert intent.status_code == 201, intent.text
        status = pay_over_webhook(client, db_session, settings, intent.json(), payer_id=wallet)
        results.append((user.id, order_id, status))

    assert [status for _, _, status in results] == ["applied"] * 3
    first, second, third = (_order(db_session, order_id) for _, order_id, _ in results)
    assert not first.risk_hold and not second.risk_hold
    assert first.status == second.status == "confirmed"
    assert (third.status, third.awaiting, third.risk_hold) == ("paid", "review", True)
    (review,) = reviews(db_session)
    assert (review.subject_type, review.subject_id) == ("order", third.id)
    assert review.event == "payment_succeeded" and review.action == "review"
    payer = hit(review, "accounts_per_payer")
    assert payer["count"] == 3 and payer["threshold"] == 3
    assert set(payer["accounts"]) == {user_id for user_id, _, _ in results}
    assert wallet not in json.dumps(review.hits)


def test_card_testing_spread_over_accounts_on_one_phone_is_caught_by_the_device(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """Card testing that rotates accounts to stay under the per-account limit (5 declines):
    three accounts on one phone, three stolen cards each. The eighth decline on the phone
    queues the account; its next checkout is refused."""
    client = client_at("203.0.113.92")
    shop = make_shop(db_session)
    phone = "android-cardtest-77aa"
    testers = []
    for user in shoppers(db_session, 3, age_days=45):
        hdrs = headers(settings, user, phone)
        order_id = _place(client, shop.sku_id, hdrs)
        intent = checkout(client, order_id, hdrs)
        assert intent.status_code == 201, intent.text
        testers.append((user, hdrs, order_id, intent.json()["id"]))

    declines = []
    for n, (user, _, _, intent_id) in enumerate(testers):
        for _ in range(3 if n < 2 else 2):
            response = decline_over_webhook(client, settings, intent_id)
            assert response.status_code == 200 and response.json()["status"] == "recorded"
            declines.append(user.id)
            if len(declines) == 7:
                assert reviews(db_session) == [], "seven declines, at most three per account"
    assert len(declines) == 8
    last_user, last_hdrs, last_order, _ = testers[2]
    (queued,) = reviews(db_session)
    assert (queued.subject_type, queued.subject_id) == ("user", last_user.id)
    assert queued.event == "payment_failed" and queued.action == "review"
    device = hit(queued, "payment_failures_per_device")
    assert device["count"] == 8 and device["threshold"] == 8 and device["window_s"] == 900
    assert set(device["orders"]) == {order_id for _, _, order_id, _ in testers}
    assert not [h for h in queued.hits if h["rule"] == "payment_failures_per_user"]
    assert phone not in json.dumps(queued.hits)

    refused = checkout(client, last_order, last_hdrs)
    assert refused.status_code == 403 and refused.json()["code"] == "RISK_BLOCKED"
    assert _order(db_session, last_order).status == "cancelled"
