"""The reports beat tasks, run as Celery tasks in-process on a database of their own."""

from __future__ import annotations

import random
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.reports.history import make_shop, reference, step, stored
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.reports import rollup
from tuanbox.reports.pageviews import day_key
from tuanbox.worker.app import create_celery


def test_refresh_task_twice_and_after_a_crash_gives_the_recomputed_rollups(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, reports_overlap_s=0)
    factory = make_session_factory(engines(url), settings)
    rng = random.Random(11)
    with session_scope(factory) as s:
        shop = make_shop(s, rng)
        for _ in range(80):
            step(s, shop, rng)
    celery = create_celery(settings)
    import tuanbox.reports.tasks as tasks

    try:
        assert tasks.refresh_rollups.apply().get() > 0
        with session_scope(factory) as s:
            first = stored(s, shop.merchant_ids)
            assert first == reference(s, shop.merchant_ids)
        assert tasks.refresh_rollups.apply().get() == 0  # nothing changed: nothing redone
        with session_scope(factory) as s:
            assert stored(s, shop.merchant_ids) == first
            for _ in range(60):
                step(s, shop, rng)
        real = rollup.store_day
        calls = 0

        def crash(*args: object, **kwargs: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("worker lost")
            real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(rollup, "store_day", crash)
        result = tasks.refresh_rollups.apply()
        assert isinstance(result.result, RuntimeError)
        with session_scope(factory) as s:
            assert stored(s, shop.merchant_ids) == first  # nothing half written
        monkeypatch.setattr(rollup, "store_day", real)
        assert tasks.refresh_rollups.apply().get() > 0
        with session_scope(factory) as s:
            assert stored(s, shop.merchant_ids) == reference(s, shop.merchant_ids)
            assert stored(s, shop.merchant_ids) != first
    finally:
        celery.close()


def test_flush_task_moves_counted_views(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, redis_url=redis_url)
    factory = make_session_factory(engines(url), settings)
    with session_scope(factory) as s:
        shop = make_shop(s, random.Random(1), merchants=1)
    campaign = shop.campaigns[shop.merchant_ids[0]][0]
    client = redis.Redis.from_url(redis_url)
    key = day_key(settings.reports_views_prefix, rollup.local_day(rollup.EPOCH, ZoneInfo("UTC")))
    client.hincrby(key, campaign, 3)
    celery = create_celery(settings)
    import tuanbox.reports.tasks as tasks

    try:
        assert tasks.flush_page_views.apply().get() == 3
        assert tasks.flush_page_views.apply().get() == 0
    finally:
        celery.close()
        client.close()
