"""The Redis page cache: hits, invalidation on change, expiry at the next clock change, no
shopper data or nonce inside, and pages still served when Redis is gone."""

from __future__ import annotations

import re

import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, tiered_spec, token_for
from tests.platform.shop.conftest import Catalogue
from tuanbox.api.app import create_app
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.services import create_campaign
from tuanbox.settings import Settings
from tuanbox.shop import session as shop_session
from tuanbox.shop.cache import PAGE, VERSION

NONCE = re.compile(r"'nonce-([^']+)'")


def version(settings: Settings) -> bytes | None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        value: bytes | None = client.get(settings.shop_cache_prefix + VERSION)
        return value
    finally:
        client.close()


def entry(settings: Settings, name: str) -> tuple[str | None, int]:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        key = settings.shop_cache_prefix + PAGE + name
        raw = client.get(key)
        return (raw.decode() if raw else None), int(client.ttl(key))
    finally:
        client.close()


def test_second_request_is_a_hit_and_a_change_rebuilds_the_page(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    assert client.get("/").headers["x-page-cache"] == "miss"
    assert client.get("/").headers["x-page-cache"] == "hit"
    before = version(settings)
    shop = make_shop(db_session)
    added = create_campaign(db_session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
                            spec=tiered_spec(shop.sku_id, title="Brand new campaign"))  # fmt: skip
    db_session.commit()
    assert version(settings) != before  # the commit invalidated every cached page
    fresh = client.get("/")
    assert fresh.headers["x-page-cache"] == "miss"
    assert f'href="/c/{added.id}"' in fresh.text
    assert client.get("/").headers["x-page-cache"] == "hit"


def test_a_sales_stock_alone_does_not_invalidate(
    client: TestClient, db_session: Session, settings: Settings, catalogue: Catalogue
) -> None:
    client.get("/")
    before = version(settings)
    sale = db_session.get(FlashSale, catalogue.live_sale_id)
    assert sale is not None
    sale.remaining -= 1  # an admission: shop.js polls the stock itself
    db_session.commit()
    assert version(settings) == before
    assert client.get("/").headers["x-page-cache"] == "hit"


def test_entry_expires_when_the_next_sale_starts(
    client: TestClient, settings: Settings, catalogue: Catalogue
) -> None:
    client.get("/")
    stored, ttl = entry(settings, "home:-:zh")
    assert stored is not None
    assert 0 < ttl <= 600  # the upcoming sale starts in ten minutes; the TTL setting is 60
    assert 0 < ttl <= settings.shop_cache_ttl_s


def test_cached_fragment_holds_no_shopper_data_and_no_nonce(
    client: TestClient, settings: Settings, catalogue: Catalogue
) -> None:
    token = token_for(settings, catalogue.shoppers[0])
    client.cookies.set(shop_session.ACCESS, token)
    signed_in = client.get("/")
    assert 'action="/signin/out"' in signed_in.text
    nonce = NONCE.search(signed_in.headers["content-security-policy"])
    assert nonce is not None
    stored, _ttl = entry(settings, "home:-:zh")
    assert stored is not None
    assert "/signin/out" not in stored and token not in stored
    assert nonce.group(1) not in stored and "nonce" not in stored
    client.cookies.clear()
    anonymous = client.get("/")
    assert anonymous.headers["x-page-cache"] == "hit"
    assert "/signin/out" not in anonymous.text  # the shell is the requester's own


def test_pages_render_without_redis(db_session: Session, catalogue: Catalogue) -> None:
    from contextlib import nullcontext

    from tuanbox.shop.pagecache import get_opener

    gone = make_settings(database_url="sqlite://", redis_url="redis://127.0.0.1:9/0")
    app = create_app(gone)
    app.dependency_overrides[get_opener] = lambda: lambda: nullcontext(db_session)
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["x-page-cache"] == "miss"
        assert f'href="/c/{catalogue.campaign_id}"' in page.text
