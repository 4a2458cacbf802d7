"""Shop tests: settings with their own rate-limit and page-cache namespaces, and a small shop."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, tiered_spec
from tuanbox.api.app import create_app
from tuanbox.api.live import free_port, serve
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory
from tuanbox.flashsale import services as flash
from tuanbox.groupbuy.services import create_campaign, open_group
from tuanbox.lockers.services import create_station
from tuanbox.settings import Settings
from tuanbox.shop.pagecache import get_opener


@pytest.fixture
def app(app: FastAPI, db_session: Session) -> FastAPI:
    """The platform app fixture, with the page cache's misses reading the test's session."""
    app.dependency_overrides[get_opener] = lambda: lambda: nullcontext(db_session)
    return app


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    run = uuid.uuid4().hex
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        media_dir=str(tmp_path / "media"),
    )


@dataclass
class Catalogue:
    campaign_id: str
    other_campaign_id: str
    group_id: str
    live_sale_id: str
    upcoming_sale_id: str
    station_a: str
    station_b: str
    shoppers: list[str]


def make_catalogue(session: Session) -> Catalogue:
    """Two stations; a tiered campaign everywhere with one open group (1 of 3), a campaign at
    station B only, a running flash sale and one starting in ten minutes."""
    now = utcnow()
    tag = uuid.uuid4().hex[:6]
    a = create_station(session, id=f"st-a-{tag}", name="Lobby A", address="1 A Road", lat=31.2,
                       lon=121.4)  # fmt: skip
    b = create_station(session, id=f"st-b-{tag}", name="Lobby B", address="2 B Road", lat=31.3,
                       lon=121.5)  # fmt: skip
    shop = make_shop(session)
    shoppers = make_shoppers(session, 3)
    tiered = create_campaign(session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
                             spec=tiered_spec(shop.sku_id, title=f"Blueberries {tag}"))  # fmt: skip
    only_b = create_campaign(
        session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id, title=f"Station B only {tag}", station_ids=(b.id,)),
    )  # fmt: skip
    opened = open_group(session, campaign_id=tiered.id, user_id=shoppers[0], now=now)
    live = flash.create_sale(
        session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
        spec=flash.SaleSpec(sku_id=shop.sku_id, title=f"Flash now {tag}", price_cents=500,
                            stock_cap=7, per_user_limit=1, starts_at=now - timedelta(minutes=1),
                            ends_at=now + timedelta(minutes=30)),
    )  # fmt: skip
    later = flash.create_sale(
        session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
        spec=flash.SaleSpec(sku_id=shop.sku_id, title=f"Flash later {tag}", price_cents=400,
                            stock_cap=5, per_user_limit=1, starts_at=now + timedelta(minutes=10),
                            ends_at=now + timedelta(minutes=40)),
    )  # fmt: skip
    session.commit()
    return Catalogue(tiered.id, only_b.id, opened.group.id, live.id, later.id, a.id, b.id, shoppers)


@pytest.fixture
def catalogue(db_session: Session) -> Catalogue:
    return make_catalogue(db_session)


# What a browser test gets from `served_shop`: the base URL, the settings, the catalogue and a
# session factory on the served database.
Site = tuple[str, Settings, Catalogue, sessionmaker[Session]]


@contextmanager
def served_shop(
    database_url: str,
    engines: Callable[..., Engine],
    *,
    public_host: str | None = None,
    **overrides: Any,
) -> Iterator[Site]:
    """The platform served on a free port over a fresh database holding `make_catalogue`'s
    shop. Rate-limit windows and cached pages get namespaces of their own (Redis outlives test
    runs, and a phone's sign-in codes are limited per hour). `public_host` puts the public base
    URL (the hosted payment page) on that host at the served port: "127.0.0.1" is the pages'
    own origin, "localhost" another one."""
    run = uuid.uuid4().hex
    port = free_port("127.0.0.1")
    if public_host is not None:
        overrides["public_base_url"] = f"http://{public_host}:{port}"
    settings = make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        **overrides,
    )
    engine = engines(settings.database_url)
    factory = make_session_factory(engine, settings)
    with factory() as session:
        catalogue = make_catalogue(session)
    with serve(create_app(settings, engine=engine), port=port) as base:
        yield base, settings, catalogue, factory
