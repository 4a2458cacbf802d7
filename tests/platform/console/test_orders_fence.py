"""Read-your-write in the console: after a bulk accept the order list (read from the replica)
shows the accepted orders even while the replica has not replayed the write."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import make_settings, replica_url_of, wait_replicated
from tests.platform.console.conftest import make_console_world, sign_in
from tests.platform.console.test_orders_pages import _awaiting
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.replicas import own_replica, replay_paused
from tuanbox.api.app import create_app
from tuanbox.console import fence
from tuanbox.db.engine import make_session_factory
from tuanbox.db.replica import dispose_read_engines
from tuanbox.orders.models import Order

EN = {"Accept-Language": "en"}
SAME = {"Origin": "http://testserver"}


def test_the_fence_cookie_is_signed_and_expires() -> None:
    settings = make_settings()
    value = fence.sign(settings, "0/3000060", now=1000.0)
    assert fence.verified_lsn(settings, value, now=1000.0) == "0/3000060"
    assert fence.verified_lsn(settings, value, now=1000.0 + fence.FENCE_TTL_S + 1) is None
    forged = value.replace("0/3000060", "FF/0")
    assert fence.verified_lsn(settings, forged, now=1000.0) is None
    other = make_settings(secret_key="another-secret-key-" + "x" * 40)
    assert fence.verified_lsn(other, value, now=1000.0) is None
    assert fence.verified_lsn(settings, "garbage", now=1000.0) is None


def test_the_list_after_a_bulk_accept_shows_it_with_replay_paused(
    pg_replica: int,
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    url = fresh_database()
    with own_replica() as replica:
        run = uuid.uuid4().hex
        settings = make_settings(
            database_url=url,
            database_replica_url=replica_url_of(url, replica.port),
            rate_limit_prefix=f"test:{run}:",
            shop_cache_prefix=f"test:{run}:shop:",
        )
        primary = engines(url)
        factory = make_session_factory(primary, settings)
        with factory() as s:
            world = make_console_world(s)
            order = _awaiting(s, settings, world)
            order_id = order.id
            s.commit()
            staff = world.staff
            s.refresh(staff)
            s.expunge(staff)
        wait_replicated(url, port=replica.port)
        box = f'value="{order_id}"'  # the accept checkbox: only while it awaits the merchant
        on_primary: list[str] = []

        def record(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
            if "FROM orders" in statement:
                on_primary.append(statement)

        app = create_app(settings, engine=primary)
        try:
            with (
                TestClient(app, follow_redirects=False) as client,
                TestClient(app, follow_redirects=False) as other,
            ):
                csrf = sign_in(client, settings, staff)
                sign_in(other, settings, staff)
                before = client.get("/console/orders?tab=to_ship", headers=EN)
                assert before.status_code == 200 and box in before.text
                with replay_paused(replica):
                    done = client.post(
                        "/console/orders/bulk",
                        data={"csrf": csrf, "action": "accept", "key": "k-" + run,
                              "order_ids": [order_id], "back": "/console/orders?tab=to_ship"},
                        headers={**EN, **SAME},
                    )  # fmt: skip
                    assert done.status_code == 200, done.text
                    assert 'data-outcome="done"' in done.text
                    assert fence.COOKIE in done.cookies or client.cookies.get(fence.COOKIE)
                    with factory() as s:
                        assert s.get(Order, order_id).status == "confirmed"  # type: ignore[union-attr]
                    event.listen(primary, "before_cursor_execute", record)
                    after = client.get("/console/orders?tab=to_ship", headers=EN)
                    event.remove(primary, "before_cursor_execute", record)
                    assert after.status_code == 200
                    assert order_id[:8] in after.text and box not in after.text
                    assert on_primary  # the replica could not have it: read on the primary
                    # The same staff in a browser without the write's cookie reads the paused
                    # replica: still awaiting (so the replay really is paused).
                    stale = other.get("/console/orders?tab=to_ship", headers=EN)
                    assert box in stale.text
                # Replayed: the fenced read waits for the replica and is served there.
                wait_replicated(url, port=replica.port)
                on_primary.clear()
                event.listen(primary, "before_cursor_execute", record)
                fresh = client.get("/console/orders?tab=to_ship", headers=EN)
                event.remove(primary, "before_cursor_execute", record)
                assert box not in fresh.text and on_primary == []
        finally:
            dispose_read_engines()
