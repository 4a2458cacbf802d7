"""The agent under the platform's broker ACL: per-locker credentials, only its own topics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent.main import EdgeRuntime
from edge.protocol.topics import topic
from firmware_sim.lockboard import LockBoardSim
from tests.edge.agent.support import (
    OwnMosquitto,
    PlatformClient,
    agent_settings,
    assign,
    wait_until,
)
from tuanbox.lockers.credentials import render_acl_file

ROOT = Path(__file__).resolve().parents[3]
LOCKER, BRIDGE = "acl-locker-1", "bridge"
PASSWORDS = {LOCKER: "locker-secret", BRIDGE: "bridge-secret", "acl-locker-2": "other-secret"}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    root = tmp_path / "mosquitto"
    root.mkdir()
    passwd, acl = root / "passwd", root / "acl"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    # The very ACL the platform generates (`tuanbox lockers broker-config`).
    acl.write_text(render_acl_file([BRIDGE]))
    broker = OwnMosquitto(
        root, auth=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
    )
    broker.start()
    yield broker
    broker.stop()


def test_agent_with_its_credentials_under_the_platform_acl(
    tmp_path: Path, secured_broker: OwnMosquitto, lockbus: LockBoardSim
) -> None:
    settings = agent_settings(
        tmp_path,
        locker_id=LOCKER,
        mqtt_port=secured_broker.port,
        mqtt_username=LOCKER,
        mqtt_password=PASSWORDS[LOCKER],
        serial_port=str(lockbus.link),
        serial_boards=2,
    )
    bridge = PlatformClient(
        "127.0.0.1", secured_broker.port, LOCKER, username=BRIDGE, password=PASSWORDS[BRIDGE]
    )
    # another locker's account may subscribe, but the broker never hands it our commands
    snooped: list[bytes] = []
    nosy = paho.Client(CallbackAPIVersion.VERSION2, client_id="nosy")
    nosy.username_pw_set("acl-locker-2", PASSWORDS["acl-locker-2"])
    nosy.on_message = lambda _c, _u, msg: snooped.append(bytes(msg.payload))
    nosy.connect("127.0.0.1", secured_broker.port)
    nosy.subscribe(topic(LOCKER, "cmd"), qos=1)
    nosy.loop_start()
    runtime = EdgeRuntime(settings).start()
    try:
        wait_until(lambda: runtime.link.connected, what="agent connected with credentials")
        command = assign(LOCKER, "0-1", "o1", "123456")
        bridge.send(command)
        assert bridge.wait_final_ack(command.id).status == "done"
        assert wait_until(lambda: bridge.states, what="state via the ACL")[-1].locker_id == LOCKER
        assert any(s.state == "online" for s in bridge.statuses)
        assert snooped == []
    finally:
        runtime.stop()
        bridge.close()
        nosy.disconnect()
        nosy.loop_stop()


def test_check_reports_refused_credentials(
    tmp_path: Path, secured_broker: OwnMosquitto, lockbus: LockBoardSim
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        f'locker_id = "{LOCKER}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nport = {secured_broker.port}\nusername = "{LOCKER}"\npassword = "wrong"\n'
        f'[serial]\nport = "{lockbus.link}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "edge.agent", "check", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    mqtt_line = next(line for line in result.stdout.splitlines() if " mqtt " in line)
    assert mqtt_line.startswith("FAIL") and "refused" in mqtt_line, result.stdout
