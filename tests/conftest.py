"""Fixtures every suite shares: real services (failing, never skipping, when absent) and the DB."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tuanbox.db.engine import bind_settings, make_engine
from tuanbox.db.migrate import upgrade
from tuanbox.devservices import probes
from tuanbox.devservices.mqtt import clear_retained
from tuanbox.settings import Settings
from tuanbox.worker.db import dispose_all

# Property tests judge inputs, not speed: on two cores shared with a load of 15-25 (CI beside
# other jobs) Hypothesis's "too slow" health check and its 200 ms deadline failed tests whose
# properties held. Examples stay as many, and a test's own settings still win.
hypothesis_settings.register_profile(
    "tuanbox", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("tuanbox")

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_HOST, MQTT_PORT = "127.0.0.1", int(os.environ.get("TEST_MQTT_PORT", "1883"))
INFLUX_URL = os.environ.get("TEST_INFLUX_URL", "http://127.0.0.1:8086")
ANVIL_URL = os.environ.get("TEST_ANVIL_URL", "http://127.0.0.1:8545")
# The streaming replica `tuanbox services up` runs of the PostgreSQL above (devservices).
PG_REPLICA_PORT = int(os.environ.get("TEST_PG_REPLICA_PORT", "5433"))
# One id per test process, for the Redis keys a run leaves behind.
RUN_ID = uuid.uuid4().hex[:12]


def _require(name: str, probe: Callable[[], object]) -> None:
    try:
        probe()
    except (OSError, ConnectionError) as exc:
        pytest.fail(
            f"{name} is not answering ({exc}); run `tuanbox services up` (make test does)",
            pytrace=False,
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Once, in the controlling process before any worker starts: clear the lockers' retained
    messages earlier runs left on the machine's broker (see tuanbox.devservices.mqtt)."""
    if hasattr(session.config, "workerinput"):
        return
    # A broker that is down is not an error here: the tests that need it fail, saying so.
    with contextlib.suppress(OSError):
        clear_retained(MQTT_HOST, MQTT_PORT)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each fault drill's report (what it broke, what it verified) at the end of the run;
    they travel as user properties, so xdist workers' drills show up too."""
    reports = [
        value
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for key, value in report.user_properties
        if key == "drill"
    ]
    if reports:
        terminalreporter.section("fault drills")
        for text in reports:
            terminalreporter.write_line(str(text))


@pytest.fixture(scope="session")
def redis_url() -> str:
    _require("Redis", lambda: probes.redis("127.0.0.1", 6379))
    return REDIS_URL


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    _require("Mosquitto", lambda: probes.mqtt(MQTT_HOST, MQTT_PORT))
    return MQTT_HOST, MQTT_PORT


@pytest.fixture(scope="session")
def influx_url() -> str:
    _require("InfluxDB", lambda: probes.influxdb(INFLUX_URL))
    return INFLUX_URL


@pytest.fixture(scope="session")
def anvil_url() -> str:
    _require("anvil", lambda: probes.evm(ANVIL_URL))
    return ANVIL_URL


@pytest.fixture(scope="session")
def pg_replica() -> int:
    """The port of a streaming standby of the test PostgreSQL (fails, never skips, when it
    is down, not a standby, not of this primary or not streaming)."""
    from pathlib import Path

    from tuanbox.devservices.pgreplica import Replica

    _require("the PostgreSQL replica", Replica(Path(".services"), port=PG_REPLICA_PORT).probe)
    return PG_REPLICA_PORT


def replica_url_of(url: str, port: int = PG_REPLICA_PORT) -> str:
    """The same database on the replica (every database of the primary is replicated)."""
    return make_url(url).set(port=port).render_as_string(hide_password=False)


def wait_replicated(url: str, timeout_s: float = 120.0, port: int = PG_REPLICA_PORT) -> str:
    """Wait until the replica (the shared one, or a test's own on ``port``) has replayed
    everything the primary has written so far (a database just created and migrated, rows
    just committed); return the replica's URL."""
    import time

    from tuanbox.db.replica import primary_lsn, wait_replayed

    primary = make_engine(url)
    with Session(primary) as db:
        lsn = primary_lsn(db)
    primary.dispose()
    assert lsn is not None
    replica_url = replica_url_of(url, port)
    deadline = time.monotonic() + timeout_s
    while True:  # the database itself appears on the replica only once its creation replays
        replica = make_engine(replica_url)
        try:
            with Session(replica) as db:
                if wait_replayed(db, lsn, timeout_s=max(0.0, deadline - time.monotonic())):
                    return replica_url
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
        finally:
            replica.dispose()
        if time.monotonic() > deadline:
            raise AssertionError(f"the replica did not replay {lsn} within {timeout_s}s")
        time.sleep(0.05)


def _admin_engine() -> Engine:
    _require("PostgreSQL", lambda: probes.postgres("127.0.0.1", 5432))
    return make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(name: str) -> str:
    """Create an empty database migrated to head; return its URL."""
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


def drop_database(name: str) -> None:
    # Celery tasks run eagerly in tests cache engines per URL; close them before the drop.
    dispose_all()
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    """One migrated database per xdist worker, shared by the rolled-back tests."""
    # The pid keeps two pytest runs on one machine (two terminals, CI jobs) from dropping
    # each other's database mid-run.
    name = f"tuanbox_test_{worker_id}_{os.getpid()}"
    yield create_database(name)
    drop_database(name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db_session(engine: Engine, settings: Settings) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test; commits become SAVEPOINTs.

    It carries the test's settings, as every entry point's sessions carry the process's."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        bind_settings(session, settings)
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """For tests that need several connections (races, a running API or worker)."""
    made: list[str] = []

    def make() -> str:
        name = f"tuanbox_t_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return create_database(name)

    yield make
    for name in made:
        drop_database(name)


def make_settings(**overrides: object) -> Settings:
    """Test settings: real local services, non-example secrets."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": "sqlite://",
        "redis_url": REDIS_URL,
        "mqtt_host": MQTT_HOST,
        "mqtt_port": MQTT_PORT,
        "influx_url": INFLUX_URL,
        "chain_rpc_url": ANVIL_URL,
        "secret_key": "test-secret-key-" + "x" * 32,
        "pii_key": "test-pii-key-" + "y" * 32,
        "payment_webhook_secret": "test-webhook-secret",
        "log_format": "console",
        # Redis outlives a test run: windows and cached pages of earlier runs (a phone's hourly
        # code limit, a home page rendered from another database) must not reach this one.
        "rate_limit_prefix": f"test:{RUN_ID}:rl:",
        "shop_cache_prefix": f"test:{RUN_ID}:shop:",
        "reports_views_prefix": f"test:{RUN_ID}:views:",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)
