"""Home, campaign and flash-sale pages: what they show, in both languages, per station."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.platform.shop.conftest import Catalogue

SAME = {"Origin": "http://testserver"}


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
