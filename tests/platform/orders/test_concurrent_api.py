"""Many shoppers buy the last units at once through the HTTP API: no oversell, no half-writes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_sku, make_user
from tuanbox.api.app import create_app
from tuanbox.catalog.models import Sku
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order


def test_api_buyers_never_oversell(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, rate_limit_prefix=f"test:{uuid.uuid4().hex}:")
    engine = make_engine(url, pool_size=20, max_overflow=10)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        sku_id = make_sku(session, stock=7).id
        headers = [auth_header(settings, make_user(session)) for _ in range(30)]
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(headers))
    with TestClient(create_app(settings, engine)) as client:

        def buy(h: dict[str, str]) -> None:
            barrier.wait()
            r = client.post("/api/v1/orders", json={"sku_id": sku_id, "qty": 1}, headers=h)
            with lock:
                statuses.append(r.status_code)

        threads = [threading.Thread(target=buy, args=(h,)) for h in headers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    with factory() as session:
        orders = session.scalar(sa.select(sa.func.count()).select_from(Order))
        sku = session.get(Sku, sku_id)
        assert sku is not None
        assert (sku.stock_on_hand, sku.stock_reserved) == (7, 7)
    engine.dispose()
    assert sorted(statuses) == [201] * 7 + [409] * 23
    assert orders == 7
