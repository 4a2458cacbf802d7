"""`make run` runs on a Redis database of its own: a `make test` at the same time (the tests'
database 0) shares no Celery queue, cache, counter or rate-limit key with it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REDIS_URL, make_settings
from tuanbox.run import child_env, run_settings
from tuanbox.settings import Settings
from tuanbox.worker.app import create_celery


def _where(url: str) -> tuple[str, int, int]:
    """(host, port, database) of a Redis URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 6379, int(parts.path.strip("/") or 0)


@pytest.fixture
def fresh_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TUANBOX_* variable and no .env: what `make run` sees on a fresh checkout."""
    for key in [k for k in os.environ if k.startswith("TUANBOX_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("fresh_machine")
def test_make_run_builds_settings_on_a_redis_database_apart_from_the_tests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = run_settings(Settings())  # as `tuanbox run` (make run) builds them (get_settings)
    tests = {_where(REDIS_URL), _where(make_settings().redis_url)}
    assert _where(built.redis_url) not in tests
    assert _where(built.redis_url) == ("127.0.0.1", 6379, 1)
    # Every child reads its settings from the environment the run gives it: the same Redis,
    # for Celery's broker and results too.
    env = child_env(built, host="127.0.0.1", port=8000)
    monkeypatch.setenv("TUANBOX_REDIS_URL", env["TUANBOX_REDIS_URL"])
    child = Settings()  # what get_settings() builds in the child
    assert child.redis_url == built.redis_url
    app = create_celery(child)
    assert _where(str(app.conf.broker_url)) not in tests
    assert _where(str(app.conf.result_backend)) not in tests


@pytest.mark.usefixtures("fresh_machine")
def test_the_run_redis_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUANBOX_RUN_REDIS_URL", "redis://127.0.0.1:6379/7")
    monkeypatch.setenv("TUANBOX_REDIS_URL", "redis://127.0.0.1:6379/0")
    built = run_settings(Settings())
    assert _where(built.redis_url) == ("127.0.0.1", 6379, 7)
    assert child_env(built, host="h", port=1)["TUANBOX_REDIS_URL"] == "redis://127.0.0.1:6379/7"
