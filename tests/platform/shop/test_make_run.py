"""`make run`'s entry point: every process up over the demo catalogue, and Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from tests.conftest import MQTT_HOST, MQTT_PORT, REDIS_URL, make_settings
from tests.support import free_port, wait_until
from tuanbox.devservices.mqtt import clear_retained
from tuanbox.dispatch.bridge import forget_session

# Celery's queue lives in the broker's database: this run gets one no test worker shares.
RUN_REDIS_DB = 13


def _descendants(root: int) -> set[int]:
    """Every process below `root` (children in their own sessions, and theirs), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(Path(a).name if i == 0 or a.endswith(("/tuanbox", "/tuanbox-edge")) else a
                    for i, a in enumerate(raw.decode().split("\0")) if a)  # fmt: skip


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
            return str(response.read().decode())
    except OSError:
        return None


@pytest.mark.slow
def test_make_run_serves_the_demo_shop_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    name = f"t{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TUANBOX_ENV": "development",
        "TUANBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "TUANBOX_RUN_REDIS_URL": f"{REDIS_URL.rsplit('/', 1)[0]}/{RUN_REDIS_DB}",
        "TUANBOX_MQTT_HOST": MQTT_HOST,
        "TUANBOX_MQTT_PORT": str(MQTT_PORT),
        "TUANBOX_SHOP_CACHE_PREFIX": f"{name}:shop:",
        "TUANBOX_LOG_FORMAT": "console",
    }
    tuanbox = str(Path(sys.executable).with_name("tuanbox"))
    # Our own console script, a test-chosen port and a temporary database and directory.
    proc = subprocess.Popen(
        [tuanbox, "run", "--port", str(port), "--name", name],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout or ()), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: "Ctrl-C stops everything" in "".join(printed) or proc.poll() is not None,
                   timeout=240, what="make run's printout")  # fmt: skip
        out = "".join(printed)
        assert proc.poll() is None, out
        for expected in (f"{base}/", "/dev/inbox", "ops.demo", "13800138001", "/c/", "/f/",
                         "/01/06901234567892/10/DEMO-PEACH-1"):  # fmt: skip
            assert expected in out, (expected, out)
        home = wait_until(lambda: _get(f"{base}/"), timeout=30, what="the home page")
        for title in (
            "蓝莓阶梯团",
            "五常大米",
            "奉化水蜜桃预售",
            "大樱桃限时秒杀",
            "鸡蛋 9.9 元秒杀",
        ):
            assert title in home, title
        assert _get(f"{base}/dev/inbox") is not None  # the development inbox answers
        # Each printed campaign (every kind) answers with its own merchant's credentials.
        printed_campaigns = dict(
            re.findall(
                r"(tiered group-buy|fixed group-buy|pre-sale) +"
                rf"{re.escape(base)}(/c/[0-9a-f-]{{36}})",
                out,
            )
        )
        assert set(printed_campaigns) == {"tiered group-buy", "fixed group-buy", "pre-sale"}, out
        licences = set()
        for path in printed_campaigns.values():
            campaign = _get(base + path)
            assert campaign is not None, path
            licences |= set(re.findall(r"DEMO-RUN-\d+|JY-DEMO-\d+", campaign))
        assert len(licences) >= 3, licences  # several merchants
        # The flash sale that starts a few minutes later, and the lot's provenance page.
        (starts,) = re.findall(r"flash sale \(soon\) .* starts (\d\d:\d\d:\d\d) UTC", out)
        at = datetime.combine(datetime.now(UTC).date(), time.fromisoformat(starts), UTC)
        ahead = (at - datetime.now(UTC)).total_seconds() % 86400
        assert 0 < ahead <= 10 * 60, (starts, ahead)
        trace = _get(f"{base}/01/06901234567892/10/DEMO-PEACH-1")
        assert trace is not None and "DEMO-PEACH-1" in trace
        family = _descendants(proc.pid)
        assert len(family) >= 6, family  # api, worker (+ pool), beat, bridge, two lockers
        commands = [_cmdline(pid) for pid in family]
        for needed in ("tuanbox api", "tuanbox worker", "tuanbox beat", "tuanbox bridge",
                       f"tuanbox-edge demo --workdir var/run/{name}/{name}-locker-1",
                       f"tuanbox-edge demo --workdir var/run/{name}/{name}-locker-2"):  # fmt: skip
            assert any(needed in c for c in commands), (needed, commands)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert proc.wait(60) == 0, "".join(printed)
        wait_until(lambda: not any(_alive(pid) for pid in family), timeout=30,
                   what="every child gone")  # fmt: skip
        assert "all processes stopped" in "".join(printed)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
        forget_session(make_settings(), f"tuanbox-{name}-bridge")
        clear_retained(MQTT_HOST, MQTT_PORT, f"tuanbox/v1/lockers/{name}-locker-1/#")
        clear_retained(MQTT_HOST, MQTT_PORT, f"tuanbox/v1/lockers/{name}-locker-2/#")


def test_make_run_is_the_readmes_first_command() -> None:
    """The README opens with `make run`, and the Makefile's run target is `tuanbox run`."""
    root = Path(__file__).parents[3]
    readme = (root / "README.md").read_text()
    block = readme.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands[0] == "make run", commands
    makefile = (root / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/tuanbox run" in recipe, recipe
