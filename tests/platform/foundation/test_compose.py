"""docker-compose.yml is valid and shaped for production (no engine runs here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
REQUIRED_ENV = (
    "TUANBOX_SECRET_KEY", "TUANBOX_PII_KEY", "TUANBOX_PAYMENT_WEBHOOK_SECRET",
    "TUANBOX_PICKUP_SIGNING_KEY", "INFLUX_TOKEN", "POSTGRES_PASSWORD", "BRIDGE_MQTT_PASSWORD",
    "LOCKER_A_MQTT_PASSWORD", "LOCKER_B_MQTT_PASSWORD", "TRACE_SIGNER_KEY",
    "TUANBOX_PUBLIC_BASE_URL", "TUANBOX_WECHATPAY_MCHID", "TUANBOX_WECHATPAY_APPID",
    "TUANBOX_WECHATPAY_MERCHANT_SERIAL_NO", "TUANBOX_WECHATPAY_PRIVATE_KEY",
    "TUANBOX_WECHATPAY_APIV3_KEY",
)  # fmt: skip
REQUIRED_ENV = (
    "TUANBOX_SECRET_KEY", "TUANBOX_PII_KEY", "TUANBOX_PAYMENT_WEBHOOK_SECRET",
    "TUANBOX_PICKUP_SIGNING_KEY", "INFLUX_TOKEN", "POSTGRES_PASSWORD", "BRIDGE_MQTT_PASSWORD",
    "LOCKER_A_MQTT_PASSWORD", "LOCKER_B_MQTT_PASSWORD", "TRACE_SIGNER_KEY",
    "TUANBOX_PUBLIC_BASE_URL", "TUANBOX_WECHATPAY_MCHID", "TUANBOX_WECHATPAY_APPID",
    "TUANBOX_WECHATPAY_MERCHANT_SERIAL_NO", "TUANBOX_WECHATPAY_PRIVATE_KEY",
    "TUANBOX_WECHATPAY_APIV3_KEY",
)  # fmt: skip
# Production texts through the SMS gateway (tuanbox.notifications): no default for its keys.
REQUIRED_ENV += (
    "TUANBOX_SMS_ACCESS_KEY_ID", "TUANBOX_SMS_ACCESS_KEY_SECRET", "TUANBOX_SMS_SIGN_NAME",
    "TUANBOX_SMS_TEMPLATES",
)  # fmt: skip


def test_compose_file_validates() -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose (Debian package) is missing: `tuanbox services install`"
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **dict.fromkeys(REQUIRED_ENV, "placeholder")},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_compose_has_the_whole_stack_with_health_and_volumes() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    for name in ("postgres", "redis", "mosquitto", "influxdb", "anvil", "api", "worker", "beat",
                 "bridge", "locker-a", "locker-b"):  # fmt: skip
        assert name in services, name
    for name in ("postgres", "redis", "mosquitto", "influxdb", "anvil", "api"):
        assert "healthcheck" in services[name], name
    assert {"pgdata", "influxdata", "mosquittodata"} <= set(spec["volumes"])
    assert services["influxdb"]["image"].startswith("influxdb:2")


def test_stream_order_writes_have_their_consumer_and_a_redis_that_fsyncs_each_write() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["api"]["environment"]["TUANBOX_FLASH_ORDER_WRITES"] == "stream"
    assert services["flash-orders"]["command"][:2] == ["tuanbox", "flash-orders"]
    assert services["flash-orders"]["environment"] == services["api"]["environment"]
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync always" in redis_cmd


def test_broker_refuses_anonymous_and_uses_acls() -> None:
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "password_file" in conf and "acl_file" in conf


def test_no_secret_values_in_compose() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    assert "${TUANBOX_SECRET_KEY:?" in text
