"""Ops dashboard fixtures: a database of our own, so parallel suites never drop it under us."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import create_database, drop_database
from tests.platform.coldchain.fx import t0, telemetry

__all__ = ["database_url", "t0", "telemetry"]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    # The shared fixture names the database after the xdist worker; several engineers run
    # suites at once on one server, so this suite takes a unique name instead.
    name = f"tuanbox_ops_{uuid.uuid4().hex[:10]}"
    yield create_database(name)
    drop_database(name)
