"""TelemetrySettings from the environment, and what 2.x refuses (through the test transport)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from telemetry.errors import TelemetryError
from telemetry.influx import InfluxClient
from telemetry.retention import apply_retention
from telemetry.rules import DEFAULT_RULES, rules_with_overrides
from telemetry.settings import TelemetrySettings


def test_rule_overrides_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMETRY_RULES", '{"chilled": {"limit_minutes": 10, "hard_limit": 11}}')
    monkeypatch.setenv("TELEMETRY_INFLUX_TOKEN", "s3cr3t-value")
    settings = TelemetrySettings(_env_file=None)
    rules = rules_with_overrides(settings.rules)
    assert rules["chilled"].limit_minutes == 10
    assert rules["chilled"].hard_limit == 11
    assert rules["chilled"].limit == DEFAULT_RULES["chilled"].limit
    assert rules["frozen"] == DEFAULT_RULES["frozen"]
    assert settings.influx_token is not None
    assert "s3cr3t-value" not in repr(settings)  # secrets stay out of logs


@pytest.mark.parametrize(
    "rules", ['{"chilled": {"limt": 9}}', '{"chilled": {"hard_limit": 5}}', '{"frozen": 3}']
)
def test_bad_rule_overrides_fail_at_start(monkeypatch: pytest.MonkeyPatch, rules: str) -> None:
    monkeypatch.setenv("TELEMETRY_RULES", rules)
    with pytest.raises(ValidationError):
        TelemetrySettings(_env_file=None)


def test_retention_statements_are_refused_on_2x() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204, headers={"X-Influxdb-Version": "v2.7.10"})

    client = InfluxClient(
        "http://x", database="b", token="t", transport=httpx.MockTransport(handler)
    )
    with client, pytest.raises(TelemetryError) as info:
        apply_retention(client, TelemetrySettings(_env_file=None))
    assert info.value.code == "INFLUX_UNSUPPORTED"
