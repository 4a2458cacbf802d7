"""Catalog pages read the real streaming replica; the order written by a join and the order
page right after it stay on the primary (read-your-write)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import PG_REPLICA_PORT, make_settings, replica_url_of, wait_replicated
from tests.platform.groupbuy.factories import token_for
from tests.platform.replicas import free_port, own_replica, replay_paused
from tests.platform.shop.conftest import Catalogue, make_catalogue
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.groupbuy.models import Campaign
from tuanbox.settings import Settings
from tuanbox.shop import pagecache
from tuanbox.shop import session as shop_session

SAME = {"Origin": "http://testserver"}
EN = {"Accept-Language": "en"}
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Statements:
    """SQL each engine of the app ran, cleared between steps."""

    primary: list[str] = field(default_factory=list)
    replica: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.primary.clear()
        self.replica.clear()


def _record(engine: Engine, into: list[str]) -> None:
    def before(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        into.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)


def _settings(url: str, replica_port: int = PG_REPLICA_PORT) -> Settings:
    run = uuid.uuid4().hex
    return make_settings(
        database_url=url,
        database_replica_url=replica_url_of(url, replica_port),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
    )


@pytest.fixture
def shop(pg_replica: int, fresh_database: Callable[[], str]) -> tuple[Settings, Catalogue]:
    url = fresh_database()
    settings = _settings(url)
    engine = make_engine(url)
    with make_session_factory(engine, settings)() as db:
        catalogue = make_catalogue(db)
    engine.dispose()
    wait_replicated(url)
    return settings, catalogue


def test_catalog_pages_read_the_replica_and_orders_stay_on_the_primary(
    shop: tuple[Settings, Catalogue], pg_replica: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fence waits for the primary's WAL position, which other suites' writes on this
    # shared server move too: give the replica time to catch up, however loaded the box is.
    monkeypatch.setattr(pagecache, "REPLICA_FENCE_S", 60.0)
    settings, catalogue = shop
    app = create_app(settings)
    seen = Statements()
    _record(app.state.engine, seen.primary)
    _record(app.state.read_engine, seen.replica)
    with app.state.read_engine.connect() as conn:
        query = sa.text("SELECT pg_is_in_recovery(), inet_server_port()")
        recovery, port = conn.execute(query).one()
        assert recovery is True and port == pg_replica
    seen.clear()

    with TestClient(app) as client:
        home = client.get("/", headers=EN)
        assert home.status_code == 200 and home.headers["X-Page-Cache"] == "miss"
        assert "Blueberries" in home.text
        assert any("FROM gb_campaigns" in s for s in seen.replica), seen.replica
        assert not any("gb_campaigns" in s for s in seen.primary), seen.primary
        # The only primary statement of a miss: the WAL position the replica must reach.
        assert seen.primary and all("pg_current_wal_lsn" in s for s in seen.primary)

        seen.clear()
        page = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
        assert page.status_code == 200 and "Blueberries" in page.text
        assert any("FROM gb_campaigns" in s for s in seen.replica)
        assert not any("gb_campaigns" in s for s in seen.primary)

        seen.clear()
        client.cookies.set(shop_session.ACCESS, token_for(settings, catalogue.shoppers[1]))
        joined = client.post(
            f"/c/{catalogue.campaign_id}/groups/{catalogue.group_id}/join",
            data={"station_id": catalogue.station_a},
            headers=SAME,
            follow_redirects=False,
        )
        assert joined.status_code == 303, joined.text
        order_url = joined.headers["location"]
        assert order_url.startswith("/orders/")
        assert any(s.startswith("INSERT INTO orders") for s in seen.primary)

        # Right after checkout: the order page reads the primary, never the replica.
        order = client.get(order_url, headers=EN)
        assert order.status_code == 200
        assert any("FROM orders" in s for s in seen.primary)
        assert not any("orders" in s for s in seen.replica), seen.replica
        assert not any(s.startswith(WRITES) for s in seen.replica)

        # A merchant's change bumps the page cache; the next miss waits for the replica to
        # replay it, so the new title is what gets rendered and cached.
        with make_session_factory(app.state.engine, settings)() as db:
            campaign = db.get(Campaign, catalogue.campaign_id)
            assert campaign is not None
            campaign.title = "Wild blueberries, renamed"
            db.commit()
        seen.clear()
        again = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
        assert again.headers["X-Page-Cache"] == "miss"
        assert "Wild blueberries, renamed" in again.text
        assert any("pg_last_wal_replay_lsn" in s for s in seen.replica)
        cached = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
        assert cached.headers["X-Page-Cache"] == "hit"
        assert "Wild blueberries, renamed" in cached.text


def _rename(settings: Settings, campaign_id: str, title: str) -> None:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine, settings)() as db:
        campaign = db.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.title = title
        db.commit()  # bumps the page cache's version
    engine.dispose()


def test_a_replica_that_is_down_leaves_the_catalog_up(shop: tuple[Settings, Catalogue]) -> None:
    settings, catalogue = shop
    down = settings.model_copy(
        update={"database_replica_url": replica_url_of(settings.database_url, free_port())}
    )
    with TestClient(create_app(down)) as client:
        page = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
        assert page.status_code == 200 and "Blueberries" in page.text
        assert client.get("/", headers=EN).status_code == 200


def test_a_lagging_replica_does_not_serve_or_cache_a_stale_page(
    shop: tuple[Settings, Catalogue],
) -> None:
    base, catalogue = shop
    with own_replica() as replica:
        wait_replicated(base.database_url, port=replica.port)
        settings = _settings(base.database_url, replica.port)
        app = create_app(settings)
        seen = Statements()
        _record(app.state.engine, seen.primary)
        with TestClient(app) as client, replay_paused(replica):
            _rename(settings, catalogue.campaign_id, "Blueberries, second harvest")
            page = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
            # The replica still has the old title; the page comes from the primary instead.
            assert "Blueberries, second harvest" in page.text
            assert any("FROM gb_campaigns" in s for s in seen.primary)
            cached = client.get(f"/c/{catalogue.campaign_id}", headers=EN)
            assert cached.headers["X-Page-Cache"] == "hit"
            assert "Blueberries, second harvest" in cached.text
