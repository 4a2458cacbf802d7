"""The dashboard reads the real streaming replica when one is configured: its rollup queries
run on the standby (port 5433), none on the primary, and it shows what was replicated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import make_settings, wait_replicated
from tests.platform.console.conftest import make_console_world, sign_in
from tests.platform.console.test_reports import seed
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_session_factory
from tuanbox.db.replica import dispose_read_engines
from tuanbox.reports import rollup


def test_the_dashboard_is_read_from_the_replica(
    pg_replica: int,
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, database_replica_url=wait_replicated(url))
    primary = engines(url)
    factory = make_session_factory(primary, settings)
    with factory() as s:
        world = make_console_world(s)
        seed(s, world)
        s.commit()
        staff = world.staff
        s.refresh(staff)
        s.expunge(staff)
    with factory() as s:
        rollup.refresh(s, ZoneInfo("Asia/Shanghai"), overlap_s=0)
        s.commit()
    wait_replicated(url)
    seen: dict[str, list[Any]] = {"primary": [], "replica": []}

    def watch(name: str) -> Callable[..., None]:
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "report_daily" in statement:  # the port the connection really reached
                seen[name].append(conn.connection.dbapi_connection.info.port)

        return record

    on_primary, on_replica = watch("primary"), watch("replica")

    app = create_app(settings, engine=primary)
    try:
        with TestClient(app, follow_redirects=False) as client:
            read_engine: Engine = app.state.read_session_factory.kw["bind"]
            assert read_engine is not primary
            event.listen(primary, "before_cursor_execute", on_primary)
            event.listen(read_engine, "before_cursor_execute", on_replica)
            sign_in(client, settings, staff)
            r = client.get("/console/reports", headers={"Accept-Language": "en"})
            assert r.status_code == 200, r.text
            assert "¥60.99" in r.text and "Peach party" in r.text
    finally:
        if event.contains(primary, "before_cursor_execute", on_primary):
            event.remove(primary, "before_cursor_execute", on_primary)
        dispose_read_engines()
    assert seen["primary"] == []
    assert seen["replica"] and set(seen["replica"]) == {pg_replica}
