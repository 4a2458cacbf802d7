"""Campaign page views: one Redis counter per view on the page, no database write; the
flush moves them to the table exactly once, even after a crash between commit and delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import date
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from tests.platform.shop.conftest import make_catalogue
from tuanbox.reports import pageviews
from tuanbox.reports.models import CampaignViews, ViewBatch
from tuanbox.settings import Settings
from tuanbox.shop.pagecache import get_opener


@pytest.fixture
def views_client(app: Any, db_session: Session) -> Iterator[TestClient]:
    app.dependency_overrides[get_opener] = lambda: lambda: nullcontext(db_session)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def rclient(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    for key in client.scan_iter(match=f"{settings.reports_views_prefix}*"):
        client.delete(key)
    client.close()


def _opener(db_session: Session) -> Any:
    def open_() -> AbstractContextManager[Session]:
        return nullcontext(db_session)

    return open_


def _views(db_session: Session, campaign_id: str) -> int:
    return sum(
        db_session.scalars(
            select(CampaignViews.views).where(CampaignViews.campaign_id == campaign_id)
        )
    )


def _counted(rclient: redis.Redis, prefix: str, campaign_id: str) -> int:
    total = 0
    for key in rclient.scan_iter(match=f"{prefix}day:*"):
        total += int(rclient.hget(key, campaign_id) or 0)
    return total


def test_views_are_counted_in_redis_without_a_database_write_then_flushed(
    views_client: TestClient,
    db_session: Session,
    engine: Engine,
    settings: Settings,
    rclient: redis.Redis,
) -> None:
    cat = make_catalogue(db_session)
    prefix = settings.reports_views_prefix
    writes: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        for _ in range(7):
            assert views_client.get(f"/c/{cat.campaign_id}").status_code == 200
        for _ in range(3):
            assert views_client.get(f"/f/{cat.live_sale_id}").status_code == 200
        assert views_client.get("/c/no-such-campaign").status_code == 404
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert writes == []
    assert _counted(rclient, prefix, cat.campaign_id) == 7
    assert _counted(rclient, prefix, cat.live_sale_id) == 3
    assert _counted(rclient, prefix, "no-such-campaign") == 0

    assert pageviews.flush(rclient, _opener(db_session), prefix) == 10
    assert _views(db_session, cat.campaign_id) == 7
    assert _views(db_session, cat.live_sale_id) == 3
    assert list(rclient.scan_iter(match=f"{prefix}*")) == []
    # Nothing new: a second flush adds nothing.
    assert pageviews.flush(rclient, _opener(db_session), prefix) == 0
    views_client.get(f"/c/{cat.campaign_id}")
    assert pageviews.flush(rclient, _opener(db_session), prefix) == 1
    assert _views(db_session, cat.campaign_id) == 8


def test_a_flush_that_crashed_after_its_commit_does_not_count_twice(
    db_session: Session, settings: Settings, rclient: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = make_catalogue(db_session)
    prefix = settings.reports_views_prefix
    key = pageviews.day_key(prefix, date(2026, 12, 1))
    rclient.hincrby(key, cat.campaign_id, 5)
    rclient.hincrby(key, "not-a-campaign", 2)  # dropped, not an error
    real_delete = redis.Redis.delete

    def lost(self: redis.Redis, *names: Any) -> int:
        raise redis.ConnectionError("worker lost before deleting the batch")

    monkeypatch.setattr(redis.Redis, "delete", lost)
    with pytest.raises(redis.ConnectionError):
        pageviews.flush(rclient, _opener(db_session), prefix)
    monkeypatch.setattr(redis.Redis, "delete", real_delete)
    # The batch was committed and is still in Redis, under its batch key.
    assert _views(db_session, cat.campaign_id) == 5
    assert len(list(rclient.scan_iter(match=f"{prefix}batch:*"))) == 1
    rclient.delete(f"{prefix}flush-lock")  # the crashed flusher's lock would expire
    assert pageviews.flush(rclient, _opener(db_session), prefix) == 0
    assert _views(db_session, cat.campaign_id) == 5
    assert list(rclient.scan_iter(match=f"{prefix}*")) == []
    assert db_session.scalar(select(ViewBatch.id).limit(1)) is not None


def test_a_flush_that_crashed_before_its_commit_is_applied_by_the_next(
    db_session: Session, settings: Settings, rclient: redis.Redis
) -> None:
    cat = make_catalogue(db_session)
    prefix = settings.reports_views_prefix
    rclient.hincrby(f"{prefix}batch:2026-12-02:dead", cat.campaign_id, 4)

    @contextmanager
    def broken() -> Iterator[Session]:
        raise RuntimeError("database down")
        yield db_session  # pragma: no cover

    with pytest.raises(RuntimeError):
        pageviews.flush(rclient, broken, prefix)
    assert _views(db_session, cat.campaign_id) == 0
    assert pageviews.flush(rclient, _opener(db_session), prefix) == 4
    assert _views(db_session, cat.campaign_id) == 4


def test_the_view_command_is_one_hincrby_on_the_local_day() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    at = datetime(2026, 12, 6, 16, 30, tzinfo=UTC)  # 00:30 on the 7th in Shanghai
    assert pageviews.view_command("p:", "c1", at, ZoneInfo("Asia/Shanghai")) == (
        "HINCRBY",
        "p:day:2026-12-07",
        "c1",
        "1",
    )
