"""Every CLI level answers --help; `services status` reports each service."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tuanbox.cli import app

runner = CliRunner()


def _commands(typer_app: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    group = typer.main.get_command(typer_app)  # type: ignore[arg-type]
    found = [prefix]

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(group, prefix)
    return found


def test_every_command_has_help() -> None:
    paths = _commands(app)
    for expected in [("api",), ("worker",), ("beat",), ("db", "upgrade"), ("demo",),
                     ("services", "up"), ("services", "status"), ("services", "down")]:  # fmt: skip
        assert expected in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_services_status_lists_each_service() -> None:
    result = runner.invoke(app, ["services", "status"])
    for name in ("postgresql", "redis", "mosquitto", "influxdb", "anvil"):
        assert name in result.output
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "firmware_sim", "--help"],
        [
            "-c",
            "import sys; from edge.agent.cli import main; sys.argv[1:] = ['--help']; main()",
        ],
    ],
)
def test_edge_side_entry_points_answer_help(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_api_workers_get_time_to_import_before_uvicorn_kills_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    result = runner.invoke(app, ["api", "--workers", "2", "--port", "1"])
    assert result.exit_code == 0, result.output
    assert seen["workers"] == 2
    # uvicorn's default (5 s) killed workers still importing the app on a busy box, forever.
    assert int(str(seen["timeout_worker_healthcheck"])) >= 30
