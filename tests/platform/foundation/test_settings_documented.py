"""Every setting of every component has a row in the README's configuration tables (issue 10:
every rate limit a setting, documented), and production refuses a short bridge password."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from edge.agent.settings import EdgeSettings
from firmware_sim.settings import SimSettings
from telemetry.settings import TelemetrySettings
from traceability.settings import TraceSettings
from tuanbox.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"
# Keys the edge agent reads from its config file only, documented by their bare names.
FILE_ONLY = {"EDGE_SENSORS", "EDGE_COMPARTMENTS", "EDGE_ZONE_INTERVALS"}


def documented(text: str) -> set[str]:
    """Variables named in the first cell of the configuration tables' rows. A row may name
    siblings by suffix (`TUANBOX_MQTT_HOST` / `_PORT`): a suffix replaces one or more of the
    last words of the full name before it, so `_PORT` also reads as `TUANBOX_MQTT_PORT`."""
    section = text[text.index("\n## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        full: str | None = None
        for code in re.findall(r"`([A-Za-z0-9_]+)`", line.split("|")[1]):
            if code.startswith("_") and full:
                words = full.split("_")
                names |= {"_".join(words[:-k]) + code for k in range(1, len(words) - 1)}
            else:
                full = code.upper() if code.islower() else code
                names.add(f"EDGE_{full}" if code.islower() else full)
    return names


@pytest.mark.parametrize(
    "model", [Settings, TelemetrySettings, EdgeSettings, SimSettings, TraceSettings]
)
def test_every_setting_has_a_row_in_the_readme(model: type[BaseSettings]) -> None:
    prefix = str(model.model_config.get("env_prefix", ""))
    rows = documented(README.read_text(encoding="utf-8"))
    missing = [
        f"{prefix}{name.upper()}"
        for name in model.model_fields
        if f"{prefix}{name.upper()}" not in rows
    ]
    assert not missing, f"settings without a row in README's Configuration: {missing}"


def test_the_checker_reads_suffix_rows_and_notices_a_missing_one() -> None:
    table = (
        "\n## Configuration\n\n| setting | default | meaning |\n| --- | --- | --- |\n"
        "| `TUANBOX_MQTT_HOST` / `_PORT` | x | y |\n"
        "| `TUANBOX_WECHATPAY_PRIVATE_KEY` / `_PRIVATE_KEY_FILE` | — | z |\n"
        "| `sensors`, `compartments` | file only | w |\n\n## Next\n"
    )
    rows = documented(table)
    assert {"TUANBOX_MQTT_HOST", "TUANBOX_MQTT_PORT", "TUANBOX_WECHATPAY_PRIVATE_KEY_FILE",
            "EDGE_SENSORS", "EDGE_COMPARTMENTS"} <= rows  # fmt: skip
    assert "TUANBOX_MQTT_TLS" not in rows and "TUANBOX_API_PORT" not in rows
    assert FILE_ONLY - rows == {"EDGE_ZONE_INTERVALS"}


def test_every_rate_limit_is_a_documented_setting() -> None:
    rows = documented(README.read_text(encoding="utf-8"))
    limits = [
        name
        for name in Settings.model_fields
        if re.search(r"_per_(ip|user|phone|device)_per_", name) or name.startswith("signin_")
    ]
    assert len(limits) >= 12, limits  # otp, auth token, joins, orders, flash, export, lockout
    assert all(f"TUANBOX_{name.upper()}" in rows for name in limits)


PRODUCTION = {
    "env": "production",
    "secret_key": "s" * 32,
    "pii_key": "p" * 32,
    "payment_webhook_secret": "w" * 32,
}


def test_production_refuses_a_short_bridge_password() -> None:
    """The bridge's broker account reads every locker's events and sends every locker's
    commands (door opens): its password is a secret like the others."""
    with pytest.raises(ValidationError, match="TUANBOX_MQTT_PASSWORD is 8 bytes"):
        Settings(_env_file=None, mqtt_password="hunter22", **PRODUCTION)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, mqtt_password="m" * 32, **PRODUCTION)  # type: ignore[arg-type]
    assert "MQTT_PASSWORD" not in str(caught.value)  # long enough; the pickup key is next
    elsewhere = {**PRODUCTION, "env": "test", "mqtt_password": "x"}
    assert Settings(_env_file=None, **elsewhere).mqtt_password is not None  # type: ignore[arg-type]
