"""Platform fixtures for MQTT tests: a fresh database per test, bridges on it, a signing key."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.token import generate_keypair, private_key_to_b64
from tests.conftest import make_settings
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.dispatch.bridge import Bridge, forget_session, new_client_id
from tuanbox.fulfilment.lifecycle import Context
from tuanbox.fulfilment.pickup import load_signing_key
from tuanbox.settings import Settings


@dataclass
class Platform:
    """A migrated database of our own plus the settings bridges use against it."""

    engine: Engine
    factory: sessionmaker[Session]
    settings: Settings
    ctx: Context

    def session(self) -> Session:
        return self.factory()


@pytest.fixture
def platform_for(fresh_database: Callable[[], str]) -> Iterator[Callable[..., Platform]]:
    """Build a Platform on a fresh database for a broker port (and setting overrides)."""
    engines: list[Engine] = []

    def make(port: int, **overrides: Any) -> Platform:
        url = fresh_database()
        private, _ = generate_keypair()
        values: dict[str, Any] = {
            "database_url": url,
            "mqtt_port": port,
            # A share group per test: bridges of concurrent tests must not steal messages.
            "bridge_share_group": f"t{uuid.uuid4().hex[:10]}",
            "pickup_signing_key": private_key_to_b64(private),
            "command_ack_timeout_s": 0.5,
            "command_retry_max_s": 2.0,
        }
        values.update(overrides)
        settings = make_settings(**values)
        engine = make_engine(url)
        engines.append(engine)
        return Platform(
            engine,
            make_session_factory(engine, settings),  # sessions carry the settings, as in the app
            settings,
            Context(settings, load_signing_key(settings)),
        )

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def bridges() -> Iterator[Callable[..., Bridge]]:
    """Start bridges on a Platform; all are stopped at teardown."""
    started: list[Bridge] = []

    def start(platform: Platform, **kwargs: Any) -> Bridge:
        bridge = Bridge(
            platform.settings,
            platform.factory,
            platform.ctx,
            client_id=kwargs.pop("client_id", new_client_id()),
            **kwargs,
        )
        bridge.start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()
        # A private broker already stopped has taken the session with it.
        with contextlib.suppress(OSError):
            forget_session(bridge.settings, bridge.client_id)
