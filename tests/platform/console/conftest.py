"""Console test fixtures: two merchants with staff, and HTTP clients signed in as their staff.

`console` is a TestClient signed in (the console cookie) as merchant A's staff; its `csrf`
attribute is the token every POST form needs (`data={"csrf": console.csrf, ...}`), and
`console.world` holds both merchants' ids. `console_as(user)` signs another client in."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import (
    STAFF_PASSWORD,
    make_merchant,
    make_product,
    make_sku,
    make_user,
)
from tuanbox.accounts.models import User
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.console import auth
from tuanbox.settings import Settings

__all__ = ["STAFF_PASSWORD", "ConsoleClient", "ConsoleWorld", "sign_in"]


@pytest.fixture
def app(app: FastAPI, db_session: Session) -> FastAPI:
    """The platform app fixture, with the shop's cached pages reading the test's session
    (so a campaign made in the console shows on `/` within the test's transaction)."""
    from contextlib import nullcontext

    from tuanbox.shop.pagecache import get_opener

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
class ConsoleWorld:
    """Merchant A (signed in) and merchant B (someone else's), each with staff and a SKU."""

    merchant_id: str
    staff: User
    product_id: str
    sku_id: str
    other_merchant_id: str
    other_staff: User
    other_product_id: str
    other_sku_id: str
    shopper: User
    extra: dict[str, str] = field(default_factory=dict)


class ConsoleClient(TestClient):
    csrf: str = ""
    world: ConsoleWorld


def make_console_world(session: Session) -> ConsoleWorld:
    a = make_merchant(session, name=f"Green Farm {uuid.uuid4().hex[:4]}")
    b = make_merchant(session, name=f"Other Farm {uuid.uuid4().hex[:4]}")
    product_a, product_b = make_product(session, a), make_product(session, b)
    sku_a, sku_b = make_sku(session, product_a, stock=50), make_sku(session, product_b, stock=50)
    return ConsoleWorld(
        merchant_id=a.id,
        staff=make_user(session, "merchant_staff", a.id),
        product_id=product_a.id,
        sku_id=sku_a.id,
        other_merchant_id=b.id,
        other_staff=make_user(session, "merchant_staff", b.id),
        other_product_id=product_b.id,
        other_sku_id=sku_b.id,
        shopper=make_user(session),
    )


def sign_in(client: TestClient, settings: Settings, user: User) -> str:
    """Put a console cookie for ``user`` on ``client``; returns its CSRF token."""
    from tuanbox.accounts.deps import Principal

    token = issue_access_token(
        settings, Principal(user.id, user.role, merchant_id=user.merchant_id)
    )
    client.cookies.set(auth.COOKIE, token, domain="testserver.local", path="/console")
    return auth.csrf_token(settings, token)


@pytest.fixture
def console_world(db_session: Session) -> ConsoleWorld:
    return make_console_world(db_session)


@pytest.fixture
def console_as(
    app: FastAPI, settings: Settings, console_world: ConsoleWorld
) -> Iterator[Callable[[User], ConsoleClient]]:
    """A new client signed in to the console as ``user`` (any role: refusals are tested)."""
    made: list[ConsoleClient] = []

    def make(user: User) -> ConsoleClient:
        client = ConsoleClient(app, follow_redirects=False)
        client.__enter__()
        client.csrf = sign_in(client, settings, user)
        client.world = console_world
        made.append(client)
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


@pytest.fixture
def console(
    console_as: Callable[[User], ConsoleClient], console_world: ConsoleWorld
) -> ConsoleClient:
    """Merchant A's staff, signed in."""
    return console_as(console_world.staff)
