"""The anchoring tick runs alone: a second worker skips while the lock is held (real Redis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from traceability.settings import TraceSettings
from tuanbox.trace.tasks import LOCK_KEY, run_exclusive


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.delete(LOCK_KEY)
    yield c
    c.delete(LOCK_KEY)
    c.close()


def test_second_tick_skips_while_the_first_runs(client: redis.Redis) -> None:
    inner: list[object] = []

    def first() -> str:
        inner.append(run_exclusive(client, 30, lambda: "second ran"))
        return "first ran"

    assert run_exclusive(client, 30, first) == "first ran"
    assert inner == [None]
    assert client.get(LOCK_KEY) is None  # released
    assert run_exclusive(client, 30, lambda: "again") == "again"


def test_lock_released_when_the_job_fails(client: redis.Redis) -> None:
    def boom() -> None:
        raise RuntimeError("chain down")

    with pytest.raises(RuntimeError):
        run_exclusive(client, 30, boom)
    assert client.get(LOCK_KEY) is None


def test_beat_task_anchors_through_celery(
    fresh_database: Callable[[], str],
    redis_url: str,
    trace_settings: TraceSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tuanbox.trace.tasks  # noqa: F401  registers the shared task
    from tests.conftest import make_settings
    from tests.platform.factories import make_merchant, make_product
    from tests.traceability import factories as tf
    from traceability.settings import ANVIL_DEV_KEY, get_settings
    from tuanbox.catalog.models import Lot
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.trace.services import record_event
    from tuanbox.worker.app import create_celery

    settings = make_settings(database_url=fresh_database(), redis_url=redis_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session, session.begin():
        merchant = make_merchant(session)
        product = make_product(session, merchant, gtin=tf.GTIN)
        session.add(Lot(product_id=product.id, gtin=tf.GTIN, lot_code=tf.LOT))
        session.flush()
        for event in tf.journey_events():
            record_event(session, event, merchant_id=merchant.id)
    engine.dispose()
    for key, value in {
        "TRACE_RPC_URL": trace_settings.rpc_url,
        "TRACE_SIGNER_KEY": ANVIL_DEV_KEY,
        "TRACE_CONTRACT_ADDRESS": str(trace_settings.contract_address),
        "TRACE_WINDOW_SECONDS": "0.001",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        celery = create_celery(settings)
        result = celery.tasks["trace.anchor_windows"].apply().get()
    finally:
        get_settings.cache_clear()
    assert len(result["cut"]) == 1 and result["anchored"] == result["cut"]
    assert result["failed"] == {}
