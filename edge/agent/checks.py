"""``tuanbox-edge check``: probe everything the agent depends on and say what is wrong."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent.errors import EdgeError
from edge.agent.lockboard import KerongBoard
from edge.agent.mqtt import tls_context
from edge.agent.sensors import ModbusReader, ProbeReader, W1Reader
from edge.agent.settings import EdgeSettings


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def _guard(name: str, probe: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(name, True, probe())
    except (EdgeError, OSError, httpx.HTTPError, ValueError) as exc:
        message = exc.message if isinstance(exc, EdgeError) else str(exc)
        return CheckResult(name, False, message)


def check_state_dir(settings: EdgeSettings) -> str:
    directory = settings.state_dir
    directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise OSError(f"{directory} is not writable by uid {os.getuid()}")
    return str(directory)


def check_lock_bus(settings: EdgeSettings, timeout: float) -> str:
    board = KerongBoard(
        settings.serial_port,
        baud=settings.serial_baud,
        polarity_closed_bit=settings.serial_polarity_closed_bit,
        reply_timeout_s=min(timeout, settings.serial_reply_timeout_s * 3),
    ).start()
    try:
        if not board.connected.wait(timeout):
            reason = board.last_open_error or "missing, busy or no permission"
            raise OSError(f"cannot open {settings.serial_port}: {reason}")
        closed = 0
        for number in range(settings.serial_boards):
            status = board.read_status(number)
            closed += sum(status.hooks_closed[: settings.serial_locks_per_board])
        total = settings.serial_boards * settings.serial_locks_per_board
        return f"{settings.serial_port}: {settings.serial_boards} board(s), {closed}/{total} closed"
    finally:
        board.close()


def check_scanner(settings: EdgeSettings) -> str:
    port = settings.scanner_port
    if port in (None, "-"):
        return "stdin" if port == "-" else "no scanner configured"
    if not os.path.exists(port):
        raise OSError(f"{port} does not exist")
    if not os.access(port, os.R_OK | os.W_OK):
        raise OSError(f"{port}: no read/write permission (is the user in group dialout?)")
    return port


def check_sensors(settings: EdgeSettings) -> str:
    readers: dict[str, ProbeReader] = {}
    if settings.w1_dir is not None:
        if not settings.w1_dir.is_dir():
            raise OSError(f"w1 dir {settings.w1_dir} does not exist (is w1-gpio enabled?)")
        readers["ds18b20"] = W1Reader(settings.w1_dir)
    if settings.modbus_port:
        readers["modbus"] = ModbusReader(
            settings.modbus_port, settings.modbus_baud, settings.modbus_timeout_s
        )
    try:
        problems, readings = [], []
        for sensor in settings.sensors:
            reader = readers.get(sensor.kind)
            if reader is None:
                problems.append(f"{sensor.id}: no w1_dir/modbus_port for {sensor.kind}")
                continue
            try:
                celsius, _ = reader.read(sensor)
                readings.append(f"{sensor.id}={celsius:.1f}°C")
            except EdgeError as exc:
                problems.append(f"{sensor.id}: {exc.code} {exc.message}")
        if problems:
            raise OSError("; ".join(problems))
        return ", ".join(readings) or "no sensors configured"
    finally:
        for reader in readers.values():
            reader.close()


def check_broker(settings: EdgeSettings, timeout: float) -> str:
    # Its own clean session: the agent's persistent session must not be taken over.
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{settings.client_id}-check", clean_session=True
    )
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    if settings.mqtt_tls:
        client.tls_set_context(tls_context(settings.mqtt_ca_file))
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
    except ssl.SSLError as exc:
        raise OSError(f"TLS: {exc}") from exc
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise OSError("no CONNACK from the broker")
        if outcome["reason"].is_failure:
            raise OSError(f"broker refused: {outcome['reason']}")
    finally:
        client.disconnect()
        client.loop_stop()
    return f"{settings.mqtt_host}:{settings.mqtt_port} as {settings.mqtt_username or 'anonymous'}"


def check_influx(settings: EdgeSettings, timeout: float) -> str:
    if not settings.influx_url:
        return "not configured: telemetry is buffered on disk only"
    url = settings.influx_url.rstrip("/")
    with httpx.Client(timeout=timeout) as client:
        ping = client.get(f"{url}/ping")
        if ping.status_code != 204:
            raise OSError(f"{url}/ping answered {ping.status_code}")
        version = ping.headers.get("X-Influxdb-Version", "?")
        if settings.influx_version == 2:
            token = settings.influx_token.get_secret_value() if settings.influx_token else ""
            buckets = client.get(
                f"{url}/api/v2/buckets",
                params={"name": settings.influx_bucket or ""},
                headers={"Authorization": f"Token {token}"},
            )
            if buckets.status_code != 200 or not buckets.json().get("buckets"):
                raise OSError(f"bucket {settings.influx_bucket!r} not readable with the token")
    return f"{url} (InfluxDB {version})"


def run_all(settings: EdgeSettings, *, timeout: float = 3.0) -> list[CheckResult]:
    key = "set" if settings.pickup_public_key else "not set yet (a configure command sets it)"
    return [
        CheckResult("config", True, f"locker {settings.locker_id}, pickup key {key}"),
        _guard("state dir", lambda: check_state_dir(settings)),
        _guard("lock bus", lambda: check_lock_bus(settings, timeout)),
        _guard("scanner", lambda: check_scanner(settings)),
        _guard("sensors", lambda: check_sensors(settings)),
        _guard("mqtt", lambda: check_broker(settings, timeout)),
        _guard("influxdb", lambda: check_influx(settings, timeout)),
    ]
