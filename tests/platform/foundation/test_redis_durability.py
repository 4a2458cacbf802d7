"""`tuanbox api` in production with stream writes refuses a Redis that could lose acknowledged
writes (appendonly no, appendfsync other than always, CONFIG refused without the override),
and starts with one that fsyncs every write; each case against a redis-server of its own."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.support import free_port, wait_until
from tuanbox import cli
from tuanbox.api.redis_durability import RedisNotDurableError, require_durable_redis
from tuanbox.devservices import probes
from tuanbox.settings import Settings

Server = Callable[..., str]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Server]:
    """Start redis-server with these arguments on a port of the test's own; its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        port = free_port()
        root = tmp_path / f"redis{len(procs)}"
        root.mkdir()
        proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
             "--bind", "127.0.0.1", "--save", "", "--dir", str(root), *args],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)

        def answers() -> bool:
            assert proc.poll() is None, "redis-server exited"
            try:
                probes.redis("127.0.0.1", port)
            except OSError:
                return False
            return True

        wait_until(answers, 10, f"redis on {port}")
        return f"redis://127.0.0.1:{port}/0"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(10)


def production(redis_url: str, **overrides: Any) -> Settings:
    """Production settings without the secrets' validation (only env and Redis matter here)."""
    values: dict[str, Any] = {"redis_url": redis_url, "flash_order_writes": "stream"}
    values.update(overrides)
    return make_settings().model_copy(update={"env": "production", **values})


DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def test_refuses_a_redis_without_append_only_file(redis_server: Server) -> None:
    url = redis_server("--appendonly", "no")
    with pytest.raises(RedisNotDurableError, match="appendonly 'no'"):
        require_durable_redis(production(url))


def test_refuses_fsync_every_second_for_group_joins_too(redis_server: Server) -> None:
    url = redis_server("--appendonly", "yes", "--appendfsync", "everysec")
    settings = production(url, flash_order_writes="request", group_join_writes="stream")
    with pytest.raises(RedisNotDurableError, match=r"GROUP_JOIN_WRITES.*appendfsync 'everysec'"):
        require_durable_redis(settings)


def test_starts_with_every_write_fsynced(redis_server: Server) -> None:
    url = redis_server(*DURABLE)
    require_durable_redis(production(url, group_join_writes="stream"))


def test_config_renamed_refuses_unless_the_operator_vouches(
    redis_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server(*DURABLE, "--rename-command", "CONFIG", "")
    with pytest.raises(RedisNotDurableError, match=r"refused CONFIG GET.*DURABILITY_ASSUMED=true"):
        require_durable_redis(production(url))
    require_durable_redis(production(url, stream_redis_durability_assumed=True))
    assert "durability is not checked" in caplog.text


def test_the_override_does_not_excuse_a_redis_that_says_no(redis_server: Server) -> None:
    url = redis_server("--appendonly", "no")
    with pytest.raises(RedisNotDurableError, match="appendonly 'no'"):
        require_durable_redis(production(url, stream_redis_durability_assumed=True))


@pytest.mark.parametrize(
    "settings",
    [
        # Development keeps nothing on disk and must still run stream writes; request writes
        # commit before answering. Neither asks Redis anything (this URL has no server).
        make_settings(redis_url="redis://127.0.0.1:9/0", flash_order_writes="stream"),
        make_settings().model_copy(
            update={"env": "production", "redis_url": "redis://127.0.0.1:9/0"}
        ),
    ],
    ids=["test-env-stream", "production-request"],
)
def test_not_checked_without_production_stream_writes(settings: Settings) -> None:
    require_durable_redis(settings)


def test_unreachable_redis_is_a_refusal_in_words() -> None:
    with pytest.raises(RedisNotDurableError, match="could not ask Redis"):
        require_durable_redis(production(f"redis://127.0.0.1:{free_port()}/0"))


def test_the_api_command_refuses_before_serving(
    redis_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: served.append(k))
    refused = production(redis_server("--appendonly", "no"))
    monkeypatch.setattr(cli, "get_settings", lambda: refused)
    result = CliRunner().invoke(cli.app, ["api"])
    assert result.exit_code == 2, result.output
    assert "not starting" in result.output and "appendfsync always" in result.output
    assert served == []

    accepted = production(redis_server(*DURABLE))
    monkeypatch.setattr(cli, "get_settings", lambda: accepted)
    result = CliRunner().invoke(cli.app, ["api"])
    assert result.exit_code == 0, result.output
    assert len(served) == 1
