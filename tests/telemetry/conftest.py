"""Telemetry fixtures: a throwaway InfluxDB database per test on the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from telemetry.influx import InfluxClient


@pytest.fixture
def influx(influx_url: str) -> Iterator[InfluxClient]:
    """A client bound to a fresh, uniquely named database, dropped after the test."""
    name = f"tuanbox_t_{uuid.uuid4().hex[:12]}"
    client = InfluxClient(influx_url, database=name)
    client.create_database()
    try:
        yield client
    finally:
        client.drop_database()
        client.close()
