"""Home, campaign and flash-sale pages: what they show, in both languages, per station."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.shop.conftest import Catalogue
from tuanbox.catalog.models import Product, Sku
from tuanbox.groupbuy.models import Campaign, Member
from tuanbox.orders.models import Order
from tuanbox.reviews.models import Review
from tuanbox.settings import Settings

SAME = {"Origin": "http://testserver"}
EN = {"Accept-Language": "en"}


def test_home_shows_picks_flash_zone_and_campaign_cards(
    client: TestClient, catalogue: Catalogue
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert "今日必拼" in html and "秒杀" in html
    assert f'href="/f/{catalogue.live_sale_id}"' in html  # the running sale
    assert f'href="/f/{catalogue.upcoming_sale_id}"' in html  # starts in ten minutes
    assert f'data-sale-stock="{catalogue.live_sale_id}"' in html  # live stock box
    assert "剩余 7 / 7" in html
    assert f'href="/c/{catalogue.campaign_id}"' in html
    assert "还差 3 人" in html  # 1 joined, nobody paid yet: 3 more paid members to succeed
    assert 'class="tiers"' in html and "¥7.00" in html  # the tier ladder
    assert "time" in html and "data-countdown" in html
    english = client.get("/", headers={"Accept-Language": "en"}).text
    assert "Only 3 more to go" in english and "Flash sales" in english


def test_station_is_chosen_once_and_filters_campaigns(
    client: TestClient, catalogue: Catalogue
) -> None:
    everywhere = client.get("/").text
    assert f'href="/c/{catalogue.other_campaign_id}"' in everywhere  # no station chosen yet
    chooser = client.get("/station")
    assert chooser.status_code == 200 and catalogue.station_a in chooser.text
    chosen = client.post("/station", data={"station_id": catalogue.station_a, "next": "/"},
                         headers=SAME, follow_redirects=False)  # fmt: skip
    assert chosen.status_code == 303 and chosen.headers["location"] == "/"
    at_a = client.get("/").text
    assert "Lobby A" in at_a
    assert f'href="/c/{catalogue.other_campaign_id}"' not in at_a  # station B only
    assert f'href="/c/{catalogue.campaign_id}"' in at_a
    client.post("/station", data={"station_id": catalogue.station_b}, headers=SAME)
    assert f'href="/c/{catalogue.other_campaign_id}"' in client.get("/").text  # changeable


def test_station_choice_refuses_unknown_and_forged(
    client: TestClient, catalogue: Catalogue
) -> None:
    for bad in ("nope", "x" * 37, "a/b", "st\x00a"):
        response = client.post("/station", data={"station_id": bad}, headers=SAME)
        assert response.status_code == 422, bad
    forged = client.post("/station", data={"station_id": catalogue.station_a},
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 403
    client.cookies.set("tuanbox_station", "<script>")
    assert client.get("/").status_code == 200  # a junk cookie is ignored


def test_campaign_page_shows_what_a_shopper_decides_on(
    client: TestClient, catalogue: Catalogue
) -> None:
    page = client.get(f"/c/{catalogue.campaign_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert "Blueberries" in html and "Green Farm" in html
    assert "Business licence" in html and "LIC-" in html
    assert 'class="tiers"' in html
    assert "Only 3 more to go" in html
    assert f'formaction="/c/{catalogue.campaign_id}/groups/{catalogue.group_id}/join"' in html
    assert f'formaction="/c/{catalogue.campaign_id}/groups"' in html
    assert '<label for="f-station">' in html and catalogue.station_a in html
    assert "Reviews" in html


def test_missing_and_malformed_ids(client: TestClient) -> None:
    assert client.get("/c/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/f/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/c/" + "9" * 40).status_code == 422
    assert client.get("/c/a%00b").status_code == 422


def test_flash_sale_pages_live_and_upcoming(client: TestClient, catalogue: Catalogue) -> None:
    live = client.get(f"/f/{catalogue.live_sale_id}", headers={"Accept-Language": "en"}).text
    assert "7 of 7 left" in live and "Ends in" in live
    later = client.get(f"/f/{catalogue.upcoming_sale_id}", headers={"Accept-Language": "en"})
    assert "Starts in" in later.text and "5 for sale" in later.text


def test_live_stock_json(client: TestClient, catalogue: Catalogue) -> None:
    ids = f"{catalogue.live_sale_id},{catalogue.upcoming_sale_id},junk!,"
    answer = client.get(f"/shop/live.json?sales={ids}")
    assert answer.status_code == 200
    assert answer.json()["sales"] == {catalogue.live_sale_id: 7, catalogue.upcoming_sale_id: 5}
    assert client.get("/shop/live.json?sales=" + "a," * 2000).status_code == 422


def test_campaign_page_shows_reviews_with_ratings_and_a_review_rebuilds_the_cached_page(
    client: TestClient, db_session: Session, catalogue: Catalogue
) -> None:
    path = f"/c/{catalogue.campaign_id}"
    first = client.get(path, headers=EN)
    assert "No reviews yet." in first.text
    assert client.get(path, headers=EN).headers["x-page-cache"] == "hit"
    member = db_session.scalars(select(Member).where(Member.group_id == catalogue.group_id)).first()
    assert member is not None and member.order_id is not None
    order = db_session.get(Order, member.order_id)
    sku = db_session.get(Sku, order.sku_id) if order is not None else None
    assert order is not None and sku is not None
    db_session.add(Review(order_id=order.id, user_id=order.user_id, product_id=sku.product_id,
                          merchant_id=order.merchant_id, rating=4, text="Plump and cold",
                          merchant_reply="Thank you!"))  # fmt: skip
    db_session.commit()
    page = client.get(path, headers=EN)
    assert page.headers["x-page-cache"] == "miss"  # the review invalidated the cached page
    html = page.text
    assert "No reviews yet." not in html and "Plump and cold" in html
    assert 'aria-label="4 out of 5 stars">★★★★☆<' in html
    assert "4.0 out of 5 · 1 reviews" in html and "Thank you!" in html
    zh = client.get(path).text
    assert 'aria-label="4 星（满分 5 星）">★★★★☆<' in zh and "4.0 分（满分 5 分）· 1 条评价" in zh


def test_campaign_page_links_its_lot_trace_page(
    client: TestClient, db_session: Session, catalogue: Catalogue
) -> None:
    campaign = db_session.get(Campaign, catalogue.campaign_id)
    assert campaign is not None
    sku = db_session.get(Sku, campaign.sku_id)
    product = db_session.get(Product, sku.product_id) if sku is not None else None
    assert product is not None
    assert "/01/" not in client.get(f"/c/{campaign.id}").text  # no lot yet: no link
    product.gtin, campaign.lot_code = "09506000134352", "LOT-9"
    db_session.commit()
    html = client.get(f"/c/{campaign.id}", headers=EN).text
    assert '<a href="/01/09506000134352/10/LOT-9">Where it comes from: trace this lot</a>' in html


def test_campaign_page_and_card_show_the_products_photos(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    from tuanbox.audit.services import Actor
    from tuanbox.catalog import media
    from tuanbox.run_catalogue import png

    campaign = db_session.get(Campaign, catalogue.campaign_id)
    sku = db_session.get(Sku, campaign.sku_id) if campaign is not None else None
    assert campaign is not None and sku is not None
    assert "<img" not in client.get(f"/c/{campaign.id}").text  # no photo yet
    actor = Actor(id="test", role="admin")
    for colour in ((10, 120, 60), (200, 40, 40)):
        media.store_image(db_session, actor, settings.media_dir, sku.product_id, png(colour))
    db_session.commit()
    html = client.get(f"/c/{campaign.id}", headers=EN).text
    photos = re.findall(
        r'<img src="(/media/[0-9a-f]+\.png)" alt="Blueberries 500 g \((\d)\)"', html
    )
    assert [n for _src, n in photos] == ["1", "2"], html
    for src, _n in photos:
        served = client.get(src)
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    home = client.get("/").text
    assert f'<img class="card-img" src="{photos[0][0]}"' in home  # the card's photo
