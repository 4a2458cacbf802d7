"""`tuanbox lockers …` and `tuanbox bridge` as real subprocesses against a fresh database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from edge.protocol.token import generate_keypair, private_key_to_b64, public_key_to_b64
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.lockers.credentials import verify_password

TUANBOX = str(Path(sys.executable).with_name("tuanbox"))


def test_lockers_cli_and_bridge_process(
    fresh_database: Callable[[], str], mqtt_broker: tuple[str, int], tmp_path: Path
) -> None:
    url = fresh_database()
    key = generate_keypair()[0]
    env = {
        **os.environ,
        "TUANBOX_ENV": "test",
        "TUANBOX_DATABASE_URL": url,
        "TUANBOX_MQTT_PORT": str(mqtt_broker[1]),
        "TUANBOX_MQTT_USERNAME": "tuanbox-bridge",
        "TUANBOX_MQTT_PASSWORD": "bridge-secret",
        "TUANBOX_PICKUP_SIGNING_KEY": private_key_to_b64(key),
        "TUANBOX_BRIDGE_SHARE_GROUP": f"t{uuid.uuid4().hex[:10]}",
        "TUANBOX_SECRET_KEY": "cli-test-secret-" + "x" * 32,
        "TUANBOX_PII_KEY": "cli-test-pii-" + "y" * 32,
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": "cli-test-webhook",
        "TUANBOX_LOG_FORMAT": "console",
    }
    locker_id = f"cli-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        done = subprocess.run(
            [TUANBOX, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("lockers", "add-station", "st-cli", "--name", "Gate 2", "--address", "2 Way",
        "--lat", "31.2", "--lon", "121.5")  # fmt: skip
    out = run("lockers", "add", locker_id, "--station", "st-cli")
    password = re.search(r"stored hashed\): (\S+)", out)
    assert password is not None
    run("lockers", "broker-config", "--out", str(tmp_path))
    lines = dict(
        line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines() if line
    )
    assert set(lines) == {"tuanbox-bridge"}  # lockers log in through the plugin's file
    (client,) = json.loads((tmp_path / "dynamic-security.json").read_text())["clients"]
    assert client["username"] == locker_id
    stored = f"$7${client['iterations']}${client['salt']}${client['password']}"
    assert verify_password(password.group(1), stored)
    assert "pattern write tuanbox/v1/lockers/%u/evt" in (tmp_path / "acl").read_text()

    # The bridge process delivers the locker's first command: configure with the pickup key
    # (the machine's broker is anonymous, so the credentials are not checked here).
    # The locker is online before the bridge starts (as in the field): a command published
    # while nobody subscribes is not queued for a locker the broker has never seen.
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    bridge = subprocess.Popen(
        [TUANBOX, "bridge", "--client-id", f"cli-bridge-{uuid.uuid4().hex[:6]}"], env=env
    )
    try:
        configures = lambda: [c for c in locker.commands if c.type == "configure"]  # noqa: E731
        command = wait_for(configures, 30, "the configure command")[0]
        assert command.payload.pickup_public_key == public_key_to_b64(key.public_key())
        engine = make_engine(url)
        factory = make_session_factory(engine)

        def acked() -> bool:
            with factory() as session:
                query = select(OutboxCommand.status).where(OutboxCommand.type == "configure")
                return session.scalars(query).one() == "done"

        wait_for(acked, 30, "the ack recorded by the bridge process")
        engine.dispose()
    finally:
        locker.close()
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(20) == 0
