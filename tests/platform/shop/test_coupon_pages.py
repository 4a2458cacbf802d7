"""The checkout page (coupons with what each saves, points, pay the rest) and the wallet page
(coupons, points, coupons for points): both languages, refusals in words, others' orders."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import template
from tests.platform.factories import make_order, make_sku, make_user
from tests.platform.groupbuy.factories import token_for
from tuanbox.coupons.models import Coupon
from tuanbox.coupons.services import issue_one
from tuanbox.points import services as points
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}
EN = {"Accept-Language": "en"}


def _sign_in(client: TestClient, settings: Settings, user_id: str) -> None:
    client.cookies.set(shop_session.ACCESS, token_for(settings, user_id))


def test_checkout_applies_a_coupon_and_points_then_pays_the_rest(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=2000), qty=2)
    good = issue_one(
        db_session, template(db_session, name="Spring", threshold_cents=3900).id, shopper.id, "good"
    )
    high = issue_one(
        db_session,
        template(db_session, name="Big spender", threshold_cents=9900).id,
        shopper.id,
        "high",
    )
    points.post(db_session, shopper.id, "gift", "earn", 300)
    db_session.commit()
    signed_out = client.get(f"/orders/{order.id}/checkout", follow_redirects=False)
    assert signed_out.status_code == 303 and "/signin" in signed_out.headers["location"]
    _sign_in(client, settings, shopper.id)
    order_page = client.get(f"/orders/{order.id}", headers=EN).text
    assert f'href="/orders/{order.id}/checkout"' in order_page
    page = client.get(f"/orders/{order.id}/checkout", headers=EN)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Saves ¥5.00" in page.text and "Spend more to use this coupon." in page.text
    assert f'value="{high.id}" disabled' in page.text
    zh = client.get(f"/orders/{order.id}/checkout", headers={"Accept-Language": "zh"}).text
    assert "省 ¥5.00" in zh and "满 ¥99.00 可用" in zh
    forged = client.post(
        f"/orders/{order.id}/checkout",
        data={"coupon": good.id},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    refused = client.post(
        f"/orders/{order.id}/checkout",
        data={"coupon": high.id},
        headers=SAME,
        follow_redirects=False,
    )
    assert refused.headers["location"].endswith("?e=COUPON_THRESHOLD_NOT_MET")
    assert (
        "Spend more to use this coupon." in client.get(refused.headers["location"], headers=EN).text
    )
    done = client.post(
        f"/orders/{order.id}/checkout",
        data={"coupon": good.id, "points": "300"},
        headers=SAME,
        follow_redirects=False,
    )
    assert done.headers["location"].endswith("?ok=applied")
    after = client.get(done.headers["location"], headers=EN).text
    assert "Your discount is applied." in after and "Pay ¥32.00" in after
    db_session.refresh(order)
    assert order.discount_cents == 800
    too_many = client.post(
        f"/orders/{order.id}/checkout", data={"points": "10000000000"}, headers=SAME
    )
    assert too_many.status_code == 422
    # The order page pays the rest through the hosted page.
    assert "Pay ¥32.00" in client.get(f"/orders/{order.id}", headers=EN).text


def test_another_shoppers_checkout_reads_as_missing(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    owner = make_user(db_session)
    order = make_order(db_session, user=owner)
    stranger = make_user(db_session)
    db_session.commit()
    _sign_in(client, settings, stranger.id)
    assert client.get(f"/orders/{order.id}/checkout").status_code == 404
    assert client.post(f"/orders/{order.id}/checkout", headers=SAME).status_code == 404
    assert client.get("/orders/a%00b/checkout").status_code in (404, 422)


def test_wallet_page_lists_coupons_points_and_buys_once_per_form(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    issue_one(db_session, template(db_session, name="Welcome").id, shopper.id, "welcome")
    offer = template(db_session, name="Points deal", points_cost=200)
    points.post(db_session, shopper.id, "gift", "earn", 250)
    db_session.commit()
    assert client.get("/me/coupons", follow_redirects=False).status_code == 303
    _sign_in(client, settings, shopper.id)
    page = client.get("/me/coupons", headers=EN).text
    assert "250 points" in page and "Welcome" in page and "Get it for 200 points" in page
    assert "250 积分" in client.get("/me/coupons", headers={"Accept-Language": "zh"}).text
    form = {"template_id": offer.id, "key": "a" * 32}
    for _ in range(2):  # the same form sent twice buys one coupon
        sent = client.post("/me/coupons/redeem", data=form, headers=SAME, follow_redirects=False)
        assert sent.headers["location"] == "/me/coupons?ok=bought"
    owned = db_session.scalar(
        select(func.count()).where(Coupon.user_id == shopper.id, Coupon.template_id == offer.id)
    )
    assert owned == 1
    again = client.post(
        "/me/coupons/redeem", data={**form, "key": "b" * 32}, headers=SAME, follow_redirects=False
    )
    assert again.headers["location"] == "/me/coupons?e=POINTS_INSUFFICIENT"
    assert (
        "You do not have enough points." in client.get(again.headers["location"], headers=EN).text
    )
    bad = client.post(
        "/me/coupons/redeem", data={"template_id": offer.id, "key": "x"}, headers=SAME
    )
    assert bad.status_code == 422
    forged = client.post(
        "/me/coupons/redeem", data=form, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403


def test_a_group_order_is_offered_coupons_and_points_at_checkout(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    """Group-buy orders take coupons and points like any other (coupons README)."""
    from tests.platform.groupbuy.factories import make_shop, make_shoppers, tiered_spec
    from tuanbox.db.base import utcnow
    from tuanbox.groupbuy import services as groupbuy
    from tuanbox.orders.models import Order

    shop = make_shop(db_session, price_cents=1200)
    (shopper,) = make_shoppers(db_session, 1)
    campaign = groupbuy.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id),
    )
    opened = groupbuy.open_group(
        db_session, campaign_id=campaign.id, user_id=shopper, qty=2, now=utcnow()
    )
    coupon = issue_one(db_session, template(db_session, name="Group treat").id, shopper, "g")
    points.post(db_session, shopper, "gift", "earn", 100)
    db_session.commit()
    _sign_in(client, settings, shopper)
    order_page = client.get(f"/orders/{opened.order_id}", headers=EN).text
    assert f'href="/orders/{opened.order_id}/checkout"' in order_page
    page = client.get(f"/orders/{opened.order_id}/checkout", headers=EN, follow_redirects=False)
    assert page.status_code == 200
    assert "Group treat" in page.text and "Saves ¥5.00" in page.text
    assert f'value="{coupon.id}" disabled' not in page.text
    done = client.post(
        f"/orders/{opened.order_id}/checkout",
        data={"coupon": coupon.id, "points": "100"},
        headers=SAME,
        follow_redirects=False,
    )
    assert done.headers["location"].endswith("?ok=applied")
    assert "Pay ¥12.00" in client.get(done.headers["location"], headers=EN).text
    order = db_session.get(Order, opened.order_id)
    assert order is not None
    db_session.refresh(order)
    assert order.discount_cents == 600
