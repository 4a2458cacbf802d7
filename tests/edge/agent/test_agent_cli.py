"""Settings loading and the ``tuanbox-edge`` command line (run as a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.agent.errors import ConfigError
from edge.agent.settings import load_settings
from firmware_sim.lockboard import LockBoardSim

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.agent", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_example_config_loads_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    example = ROOT / "edge" / "deploy" / "edge.example.toml"
    monkeypatch.setenv("EDGE_MQTT_PORT", "18883")
    settings = load_settings(example)
    assert settings.locker_id == "sz-nanshan-001"
    assert settings.mqtt_port == 18883  # environment over file
    assert settings.serial_boards == 2 and settings.influx_version == 2
    assert settings.health_interval_s == 30
    assert [s.kind for s in settings.sensors] == ["ds18b20", "modbus"]
    assert settings.compartment_map()["1-16"].out_of_service
    assert settings.compartment_map()["0-2"].zone == "chilled"
    assert load_settings(example, locker_id="other").locker_id == "other"  # arguments win


def test_yaml_config_and_errors(tmp_path: Path) -> None:
    yaml_file = tmp_path / "edge.yaml"
    yaml_file.write_text("locker_id: L9\nmqtt:\n  host: broker.local\nserial:\n  boards: 3\n")
    settings = load_settings(yaml_file)
    assert (settings.mqtt_host, settings.serial_boards) == ("broker.local", 3)
    typo = tmp_path / "typo.toml"
    typo.write_text('locker_id = "L1"\n[serial]\npoll_interval_ms = 40\nbuad = 9600\n')
    with pytest.raises(ConfigError) as err:
        load_settings(typo)
    assert "serial_poll_interval_ms" in err.value.message
    assert "serial_buad" in err.value.message
    with pytest.raises(ConfigError):
        load_settings(None, locker_id="a/b")


def test_help_everywhere() -> None:
    for args in ((), ("run",), ("check",), ("demo",)):
        result = _cli(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_check_passes_against_real_services(
    tmp_path: Path, lockbus: LockBoardSim, mqtt_broker: tuple[str, int], influx_url: str
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        f'locker_id = "check-ok"\nstate_dir = "{tmp_path / "state"}"\n'
        f'influx_url = "{influx_url}"\n'
        f'[mqtt]\nport = {mqtt_broker[1]}\n[serial]\nport = "{lockbus.link}"\nboards = 2\n'
    )
    result = _cli("check", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 board(s), 32/32 closed" in result.stdout
    assert "FAIL" not in result.stdout


def test_check_names_what_is_wrong(tmp_path: Path, lockbus: LockBoardSim) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        f'locker_id = "check-bad"\nstate_dir = "{tmp_path / "state"}"\n'
        f'influx_url = "http://127.0.0.1:9"\nw1_dir = "{tmp_path / "no-w1"}"\n'
        '[[sensors]]\nid = "p1"\nkind = "ds18b20"\nw1_id = "28-000000000001"\n'
        '[mqtt]\nport = 9\n[serial]\nport = "/dev/does-not-exist"\n'
        '[scanner]\nport = "/dev/no-scanner"\n'
    )
    result = _cli("check", "--config", str(config), "--timeout", "1")
    assert result.returncode == 1
    failed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL")}
    assert failed == {"lock", "scanner", "sensors", "mqtt", "influxdb"}, result.stdout
    assert "/dev/does-not-exist" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('locker_id = "x"\n[serial]\nbaud = "fast"\n')
    broken = _cli("check", "--config", str(bad))
    assert broken.returncode == 2
    assert "serial_baud" in broken.stderr
