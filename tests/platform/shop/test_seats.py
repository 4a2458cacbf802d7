"""Open or join a group from the campaign page, as the shopper of the session cookie."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.groupbuy.models import Member
from tuanbox.orders.models import Order
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}


def as_shopper(client: TestClient, settings: Settings, user_id: str, role: str = "shopper") -> None:
    client.cookies.set(shop_session.ACCESS, token_for(settings, user_id, role))


def test_joining_takes_a_seat_and_lands_on_the_order(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    as_shopper(client, settings, catalogue.shoppers[1])
    url = f"/c/{catalogue.campaign_id}/groups/{catalogue.group_id}/join"
    joined = client.post(url, data={"station_id": catalogue.station_a}, headers=SAME,
                         follow_redirects=False)  # fmt: skip
    assert joined.status_code == 303, joined.text
    order_id = joined.headers["location"].removeprefix("/orders/")
    order = db_session.get(Order, order_id)
    assert order is not None and order.user_id == catalogue.shoppers[1]
    assert order.station_id == catalogue.station_a
    seat = db_session.query(Member).filter_by(group_id=catalogue.group_id,
                                              user_id=catalogue.shoppers[1]).one()  # fmt: skip
    assert seat.order_id == order_id
    again = client.post(url, headers=SAME, follow_redirects=False)
    assert again.headers["location"] == f"/c/{catalogue.campaign_id}?e=ALREADY_MEMBER"
    shown = client.get(again.headers["location"], headers={"Accept-Language": "en"})
    assert "You are already in this group." in shown.text and 'role="alert"' in shown.text


def test_opening_a_group(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    as_shopper(client, settings, catalogue.shoppers[2])
    opened = client.post(f"/c/{catalogue.campaign_id}/groups", headers=SAME,
                         follow_redirects=False)  # fmt: skip
    assert opened.status_code == 303 and opened.headers["location"].startswith("/orders/")
    order = db_session.get(Order, opened.headers["location"].removeprefix("/orders/"))
    assert order is not None and order.user_id == catalogue.shoppers[2]


def test_signed_out_bearer_and_cross_site_posts_take_no_seat(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    url = f"/c/{catalogue.campaign_id}/groups"
    signed_out = client.post(url, headers=SAME, follow_redirects=False)
    assert signed_out.headers["location"] == f"/signin?next=/c/{catalogue.campaign_id}"
    bearer = {**SAME, "Authorization": f"Bearer {token_for(settings, catalogue.shoppers[1])}"}
    by_header = client.post(url, headers=bearer, follow_redirects=False)
    assert by_header.headers["location"].startswith("/signin?")  # the cookie is the session
    as_shopper(client, settings, catalogue.shoppers[1])
    forged = client.post(url, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    staff = catalogue.shoppers[1]
    as_shopper(client, settings, staff, role="merchant_staff")
    not_shopper = client.post(url, headers=SAME, follow_redirects=False)
    assert not_shopper.headers["location"].startswith("/signin?")
    assert db_session.query(Member).filter_by(user_id=catalogue.shoppers[1]).count() == 0


def test_bad_station_and_ids_are_4xx(
    client: TestClient, settings: Settings, catalogue: Catalogue
) -> None:
    as_shopper(client, settings, catalogue.shoppers[1])
    url = f"/c/{catalogue.campaign_id}/groups"
    too_long = client.post(url, data={"station_id": "x" * 37}, headers=SAME)
    assert too_long.status_code == 422
    unknown = client.post(url, data={"station_id": "no-such-station"}, headers=SAME,
                          follow_redirects=False)  # fmt: skip
    assert unknown.headers["location"].endswith("?e=NOT_FOUND")
    shown = client.get(unknown.headers["location"], headers={"Accept-Language": "en"})
    assert "That group or station does not exist (any more)." in shown.text
    assert client.post("/c/" + "x" * 40 + "/groups", headers=SAME).status_code == 422
    missing = client.post("/c/00000000-0000-0000-0000-000000000000/groups", headers=SAME,
                          follow_redirects=False)  # fmt: skip
    assert missing.headers["location"].endswith("?e=NOT_FOUND")
