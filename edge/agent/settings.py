"""Agent settings (env prefix ``EDGE_``, plus an optional TOML/YAML file named by ``EDGE_CONFIG``).

Precedence: explicit arguments > environment > config file > defaults. In the file, the
tables ``[mqtt]``, ``[serial]``, ``[scanner]``, ``[influx]``, ``[pickup]`` and ``[modbus]`` are
flattened to ``mqtt_host`` and so on, so the file and the environment share one set of names.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.agent.errors import ConfigError
from edge.protocol.compartments import compartment_id, parse_compartment
from edge.protocol.errors import ProtocolError
from edge.protocol.token import public_key_from_b64
from edge.protocol.topics import validate_locker_id

FLATTENED_TABLES = ("mqtt", "serial", "scanner", "influx", "pickup", "modbus", "door", "health")


# The zones telemetry.schema accepts; only chilled and frozen carry cold-chain rules.
Zone = Literal["ambient", "chilled", "frozen"]


class CompartmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zone: Zone = "ambient"
    out_of_service: bool = False


class SensorConfig(BaseModel):
    """One probe: a DS18B20 (``w1_id`` like ``28-0000075a1b2c``) or a Modbus unit."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    kind: Literal["ds18b20", "modbus"]
    zone: Zone = "ambient"
    compartment: str = ""
    w1_id: str | None = None
    unit: int | None = Field(default=None, ge=1, le=247)


class EdgeSettings(BaseSettings):
    """Every knob of one locker agent; documented in README's configuration table."""

    # Unknown keys are errors: a typo in the config file must not silently keep a default.
    model_config = SettingsConfigDict(env_prefix="EDGE_", extra="forbid", validate_default=True)

    locker_id: str
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    state_dir: Path = Path("/var/lib/tuanbox-edge")
    # Bounded hand-off from the paho, serial, scanner and unlock threads to the agent thread;
    # when full the newest input is dropped (a command is resent by the platform until acked).
    agent_inbox_size: int = Field(default=1024, ge=16)
    # Everything waiting to leave the locker (events, acks, telemetry points) shares this
    # bound on disk. Past it the oldest telemetry goes first, then the oldest pickup_rejected
    # and sensor_fault events (both counted in locker_health); pickups, door events, tamper,
    # unlock failures and acks are never dropped.
    outbox_max_rows: int = Field(default=100_000, ge=100, le=5_000_000)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_client_id: str | None = None  # default: tuanbox-edge-<locker_id>, stable across restarts
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=600)
    mqtt_backoff_min_s: float = Field(default=0.5, gt=0)
    mqtt_backoff_max_s: float = Field(default=30.0, gt=0)
    mqtt_publish_window: int = Field(default=100, ge=1, le=1000)

    serial_port: str = "/dev/ttyUSB0"
    serial_baud: int = 19200
    serial_boards: int = Field(default=1, ge=1, le=16)
    serial_locks_per_board: int = Field(default=16, ge=1, le=16)
    serial_polarity_closed_bit: Literal[0, 1] = 1
    serial_poll_interval_ms: int = Field(default=150, ge=100, le=250)
    serial_reply_timeout_s: float = Field(default=0.3, gt=0, le=5)
    serial_unlock_confirm_s: float = Field(default=2.0, gt=0, le=60)
    serial_unlock_retries: int = Field(default=2, ge=0, le=10)
    serial_reopen_backoff_max_s: float = Field(default=5.0, gt=0)

    door_left_open_seconds: int = Field(default=120, gt=0, le=3600)

    scanner_port: str | None = None  # a serial device, "-" for stdin, or None for no scanner
    scanner_baud: int = 9600

    w1_dir: Path | None = None
    modbus_port: str | None = None
    modbus_baud: int = 9600
    modbus_timeout_s: float = Field(default=0.5, gt=0, le=5)
    sensors: list[SensorConfig] = Field(default_factory=list)
    default_zone: Zone = "ambient"
    zone_intervals: dict[str, float] = Field(default_factory=dict)
    sample_interval_seconds: float = Field(default=30.0, gt=0)
    compartments: dict[str, CompartmentConfig] = Field(default_factory=dict)

    influx_version: Literal[1, 2] = 1
    influx_url: str | None = None  # None: telemetry is buffered only
    influx_db: str = "tuanbox"
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_token: SecretStr | None = None
    influx_batch_size: int = Field(default=500, ge=1, le=10000)
    influx_buffer_max_rows: int = Field(default=100_000, ge=10)
    influx_flush_interval_s: float = Field(default=2.0, gt=0)
    # Group commit: a point reaches SQLite at most this long after it was sampled (sooner when
    # batch_size points wait); kill -9 can lose only points not committed yet.
    influx_commit_interval_s: float = Field(default=0.1, gt=0, le=5)
    influx_timeout_s: float = Field(default=5.0, gt=0)
    influx_create_db: bool = True
    health_interval_s: float = Field(default=30.0, gt=0)

    pickup_public_key: str | None = None
    pickup_fallback_max_attempts: int = Field(default=5, ge=1, le=100)
    pickup_fallback_lockout_s: float = Field(default=300.0, gt=0)

    @field_validator("locker_id")
    @classmethod
    def _locker_id(cls, value: str) -> str:
        try:
            return validate_locker_id(value)
        except ProtocolError as exc:
            raise ValueError(exc.message) from exc

    @field_validator("pickup_public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value:
            try:
                public_key_from_b64(value)
            except ProtocolError as exc:
                raise ValueError(exc.message) from exc
        return value or None

    @field_validator("compartments")
    @classmethod
    def _compartment_ids(cls, value: dict[str, CompartmentConfig]) -> dict[str, CompartmentConfig]:
        for key in value:
            try:
                parse_compartment(key)
            except ProtocolError as exc:
                raise ValueError(exc.message) from exc
        return value

    @property
    def client_id(self) -> str:
        return self.mqtt_client_id or f"tuanbox-edge-{self.locker_id}"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "agent.sqlite3"

    def compartment_map(self) -> dict[str, CompartmentConfig]:
        """Every compartment the boards have, with its zone; the file may override a few."""
        result: dict[str, CompartmentConfig] = {}
        for board in range(self.serial_boards):
            for lock in range(1, self.serial_locks_per_board + 1):
                cid = compartment_id(board, lock)
                result[cid] = self.compartments.get(cid, CompartmentConfig(zone=self.default_zone))
        return result

    def zone_interval(self, zone: str) -> float:
        return self.zone_intervals.get(zone, self.sample_interval_seconds)


def read_config_file(path: Path) -> dict[str, Any]:
    """Values of a TOML (``.toml``) or YAML file, with the known tables flattened."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if path.suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} does not parse: {exc}") from exc
    else:
        import yaml  # only a YAML config pays for the parser's memory (about 1 MB on a Pi)

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} does not parse: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a table/mapping at top level")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in FLATTENED_TABLES and isinstance(value, dict):
            flat.update({f"{key}_{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    return flat


class _DictSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> EdgeSettings:
    """Build settings once per entry point; ConfigError lists every invalid field."""
    path = config_file or os.environ.get("EDGE_CONFIG")
    file_values = read_config_file(Path(path)) if path else {}

    class _Loaded(EdgeSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _DictSource(settings_cls, file_values)

    try:
        return _Loaded(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid edge settings: {problems}") from exc
