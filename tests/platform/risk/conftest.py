"""Risk control fixtures: a database of our own, settings, and clients behind given IPs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import create_database, drop_database, make_settings
from tuanbox.settings import Settings


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    # Several suites run at once on one server: this one takes a database of its own.
    name = f"tuanbox_risk_{uuid.uuid4().hex[:10]}"
    yield create_database(name)
    drop_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        # Rate limits are the other layer; these tests are about what risk control decides.
        flash_per_ip_per_10s=10_000,
    )


@pytest.fixture
def client_at(app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    """`client_at("100.64.0.1")`: a client whose requests come from that address."""
    opened: list[TestClient] = []

    def make(ip: str) -> TestClient:
        client = TestClient(app, client=(ip, 40_000 + len(opened)))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)
