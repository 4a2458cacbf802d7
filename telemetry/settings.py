"""Telemetry settings (env prefix TELEMETRY_), read by entry points and passed down."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    """Where telemetry lives and how long it is kept; every knob is in README's config table."""

    model_config = SettingsConfigDict(
        env_prefix="TELEMETRY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "tuanbox"
    # 1.x basic credentials (sent as u/p auth) ...
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    # ... or a 2.x API token, sent as `Authorization: Token …` to the v1 compatibility API.
    influx_token: SecretStr | None = None
    influx_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Raw points live in `raw_retention_policy` for this long; 5-minute aggregates in the
    # rollup policy for much longer (see telemetry/retention.py).
    raw_retention_policy: str = "raw"
    raw_retention: str = "30d"
    rollup_retention_policy: str = "rollup_5m"
    rollup_retention: str = "730d"
    # Excursion scans: how far back each run reads at most (silence is per zone, in rules).
    scan_lookback_minutes: int = Field(default=90, ge=5, le=24 * 60)
    # A compartment that reports again after an outage has its backlog judged this far back.
    scan_backlog_days: int = Field(default=7, ge=1, le=60)
    # Per-zone overrides of telemetry.rules.DEFAULT_RULES as JSON, e.g.
    # TELEMETRY_RULES='{"chilled": {"limit_minutes": 10}, "frozen": {"silence_minutes": 5}}'.
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _rules_apply(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Refuse a bad override when the process starts, not on every scan afterwards.
        from telemetry.rules import rules_with_overrides

        try:
            rules_with_overrides(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"TELEMETRY_RULES: {exc}") from exc
        return value
