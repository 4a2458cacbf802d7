"""`tuanbox coldchain setup` against the real InfluxDB."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from telemetry.influx import InfluxClient
from telemetry.settings import TelemetrySettings
from tuanbox.cli import app


def test_setup_creates_policies_and_rollups(
    telemetry: TelemetrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRY_INFLUX_URL", telemetry.influx_url)
    monkeypatch.setenv("TELEMETRY_INFLUX_DATABASE", telemetry.influx_database)
    result = CliRunner().invoke(app, ["coldchain", "setup"])
    assert result.exit_code == 0, result.output
    assert "raw (30d, default)" in result.output
    with InfluxClient.from_settings(telemetry) as influx:
        assert set(influx.continuous_queries()) == {
            "cq_cold_chain_5m", "cq_locker_health_5m", "cq_door_5m"
        }  # fmt: skip


def test_setup_reports_influxdb_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMETRY_INFLUX_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TELEMETRY_INFLUX_TIMEOUT_S", "1")
    result = CliRunner().invoke(app, ["coldchain", "setup"])
    assert result.exit_code == 1
    assert "INFLUX_UNAVAILABLE" in result.output
