"""Station-day popularity counts past the window are deleted by the beat job; recent ones stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import make_settings
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.recommend.models import RecStationDay
from tuanbox.worker.app import BEAT_SCHEDULE, create_celery


def test_prune_days_keeps_the_popularity_window(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, recommend_popularity_days=30)
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    try:
        today = utcnow().date()
        with factory() as session:
            for age in (0, 30, 31, 32, 90):
                session.add(RecStationDay(station_id="st", day=today - timedelta(days=age),
                                          product_id="p", orders=1))  # fmt: skip
            session.commit()
        app = create_celery(settings)
        app.loader.import_default_modules()  # the worker imports TASK_MODULES at start
        assert BEAT_SCHEDULE["recommend.prune_days"]["task"] == "recommend.prune_days"
        assert app.tasks["recommend.prune_days"].apply().get() == 2
        with factory() as session:
            left = sorted((today - d).days for d in session.scalars(select(RecStationDay.day)))
        assert left == [0, 30, 31]
    finally:
        engine.dispose()
