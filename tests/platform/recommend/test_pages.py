"""The recommendation blocks: "一起买的还有" in the campaign page's cached fragment (per
campaign and station), "猜你喜欢" for a signed-in shopper outside the cache; only campaigns
on sale now are ever shown."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import token_for
from tests.platform.recommend.catalogue import make_rec_shop
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.models import Campaign
from tuanbox.recommend import reads, services
from tuanbox.settings import Settings
from tuanbox.shop import listing
from tuanbox.shop import session as shop_session
from tuanbox.shop.home import STATION_COOKIE


def _shown(block: str) -> list[str]:
    return re.findall(r'href="/c/([0-9a-f-]+)"', block)


def _block(html: str, block_id: str) -> str:
    start = html.find(f'id="{block_id}"')
    if start < 0:
        return ""
    return html[start : html.index("</section>", start)]


def test_items_not_on_sale_are_never_recommended(db_session: Session, settings: Settings) -> None:
    shop = make_rec_shop(db_session)
    view = listing.campaign(db_session, shop.main, utcnow())
    assert view is not None
    main = view.product_id
    together = reads.bought_with(db_session, settings, main, shop.station, utcnow())
    ids = [v.id for v in together]
    # The ended and the paused campaigns' products co-occur most, yet are not on sale.
    assert ids[0] == shop.together
    assert shop.ended not in ids and shop.paused not in ids and shop.main not in ids
    for user in (shop.buyer, shop.newcomer):
        mine = [v.id for v in reads.for_shopper(db_session, settings, user, shop.station, utcnow())]
        assert mine, user
        assert shop.ended not in mine and shop.paused not in mine
    bought = [v.id for v in reads.for_shopper(db_session, settings, shop.buyer, None, utcnow())]
    assert bought[0] == shop.together and shop.main not in bought  # P0 is theirs already
    newcomer = reads.for_shopper(db_session, settings, shop.newcomer, shop.station, utcnow())
    assert newcomer[0].id == shop.popular  # cold start: the station's popular one


def test_campaign_page_shows_bought_together(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_rec_shop(db_session)
    client.cookies.set(STATION_COOKIE, shop.station)
    for lang, heading in (("zh", "一起买的还有"), ("en", "Bought together with this")):
        client.cookies.set("tuanbox_lang", lang)
        page = client.get(f"/c/{shop.main}")
        assert page.status_code == 200
        block = _block(page.text, "together")
        assert heading in block
        assert f'href="/c/{shop.together}"' in block
        assert shop.ended not in block and shop.paused not in block
        assert f'href="/c/{shop.main}"' not in block
        assert _shown(block)[0] == shop.together and shop.popular in _shown(block)
    assert client.get(f"/c/{shop.main}").headers["X-Page-Cache"] == "hit"


def test_home_guess_you_like_is_the_shoppers_own_and_outside_the_cache(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_rec_shop(db_session)
    client.cookies.set(STATION_COOKIE, shop.station)
    signed_out = client.get("/")
    assert signed_out.status_code == 200
    assert 'id="for-you"' not in signed_out.text
    client.cookies.set(shop_session.ACCESS, token_for(settings, shop.buyer))
    mine = client.get("/")
    assert mine.headers["X-Page-Cache"] == "hit"  # the shared fragment, cached
    block = _block(mine.text, "for-you")
    assert "猜你喜欢" in block
    assert _shown(block)[0] == shop.together
    assert f'href="/c/{shop.main}"' not in block  # bought already
    assert shop.ended not in block and shop.paused not in block
    client.cookies.set(shop_session.ACCESS, token_for(settings, shop.newcomer))
    theirs = client.get("/")
    assert theirs.headers["X-Page-Cache"] == "hit"
    assert _shown(_block(theirs.text, "for-you"))[0] == shop.popular  # cold start
    client.cookies.set("tuanbox_lang", "en")
    assert "Guess you like" in _block(client.get("/").text, "for-you")


def test_guess_you_like_is_cached_per_shopper_until_the_campaigns_change(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_rec_shop(db_session)
    client.cookies.set(STATION_COOKIE, shop.station)
    client.cookies.set(shop_session.ACCESS, token_for(settings, shop.newcomer))
    assert _shown(_block(client.get("/").text, "for-you"))[0] == shop.popular
    # New pickups make the "together" product the station's most popular; counts alone do
    # not invalidate pages, so the shopper's cached block stands (for at most the TTL).
    together = listing.campaign(db_session, shop.together, utcnow())
    assert together is not None
    for i in range(10):
        services.record(
            db_session,
            order_id=f"late-{shop.station}-{i}",
            user_id=f"late-{i}",
            product_id=together.product_id,
            station_id=shop.station,
            at=utcnow(),
        )
    db_session.commit()
    assert _shown(_block(client.get("/").text, "for-you"))[0] == shop.popular
    # Another shopper's block is their own, not this one.
    client.cookies.set(shop_session.ACCESS, token_for(settings, shop.buyer))
    assert _shown(_block(client.get("/").text, "for-you"))[0] == shop.together
    # A campaign change drops every cached block: the popular one's campaign ends.
    ended = db_session.get(Campaign, shop.popular)
    assert ended is not None
    ended.ends_at = utcnow() - timedelta(seconds=1)
    db_session.commit()
    client.cookies.set(shop_session.ACCESS, token_for(settings, shop.newcomer))
    shown = _shown(_block(client.get("/").text, "for-you"))
    assert shown[0] == shop.together and shop.popular not in shown
