"""The flash-sale buy button: the API's own admission for the cookie's shopper, then the order."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.orders.models import Order
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}


def test_buy_from_the_home_page_lands_on_the_new_order(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    sale = catalogue.live_sale_id
    home = client.get("/").text
    assert f'action="/f/{sale}/buy"' in home and "立即抢购" in home
    assert f'action="/f/{catalogue.upcoming_sale_id}/buy"' not in home  # not on sale yet
    away = client.post(f"/f/{sale}/buy", headers=SAME, follow_redirects=False)
    assert away.headers["location"] == f"/signin?next=/f/{sale}"
    shopper = catalogue.shoppers[1]
    client.cookies.set(shop_session.ACCESS, token_for(settings, shopper))
    client.cookies.set("tuanbox_station", catalogue.station_a)
    forged = client.post(f"/f/{sale}/buy", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    bought = client.post(f"/f/{sale}/buy", headers=SAME, follow_redirects=False)
    assert bought.status_code == 303 and bought.headers["location"].startswith("/orders/")
    order = db_session.get(Order, bought.headers["location"].rsplit("/", 1)[1])
    assert order is not None and order.user_id == shopper and order.kind == "flash"
    assert order.station_id == catalogue.station_a and order.status == "pending_payment"
    again = client.post(f"/f/{sale}/buy", headers=SAME, follow_redirects=False)
    assert again.headers["location"] == f"/f/{sale}?e=USER_LIMIT_EXCEEDED"
    english = client.get(again.headers["location"], headers={"Accept-Language": "en"}).text
    assert "You have reached the limit for this offer." in english
    assert client.post("/f/nope%00/buy", headers=SAME).status_code in (400, 422)
