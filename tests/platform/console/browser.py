"""Browser fixtures for console pages: a served app on its own database with two merchants'
staff, and signing in on the page. Import into a test module:

    from tests.platform.console.browser import ConsoleSite, console_site, sign_in_page  # noqa: F401
    from tests.platform.groupbuy.factories import engines  # noqa: F401
    from tests.platform.shop.test_pages_browser import check_page, phone
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from tests.conftest import make_settings
from tests.platform.console.conftest import STAFF_PASSWORD, ConsoleWorld, make_console_world
from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.db.engine import make_session_factory
from tuanbox.settings import Settings


@dataclass
class ConsoleSite:
    base: str  # http://127.0.0.1:<port>
    settings: Settings
    world: ConsoleWorld  # its users are detached: use their ids and logins
    factory: sessionmaker[Any]  # sessions on the site's database (to seed or check rows)


@pytest.fixture
def console_site(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ConsoleSite]:
    run = uuid.uuid4().hex
    settings = make_settings(
        database_url=fresh_database(),
        rate_limit_prefix=f"test:{run}:",
        shop_cache_prefix=f"test:{run}:shop:",
        media_dir=str(tmp_path_factory.mktemp("media")),
    )
    engine = engines(settings.database_url)
    factory = make_session_factory(engine, settings)
    with factory() as session:
        world = make_console_world(session)
        session.commit()
        for user in (world.staff, world.other_staff, world.shopper):
            session.refresh(user)
            session.expunge(user)
    with serve(create_app(settings, engine=engine)) as base:
        yield ConsoleSite(base, settings, world, factory)


def sign_in_page(page: Page, site: ConsoleSite, login: str | None = None) -> None:
    """Sign in on /console/signin as merchant A's staff (or ``login``), by hand."""
    page.goto(site.base + "/console/signin")
    page.fill("#f-login", login or site.world.staff.login or "")
    page.fill("#f-password", STAFF_PASSWORD)
    page.click("form[action='/console/signin'] button[type=submit]")
    page.wait_for_url(site.base + "/console")
