"""Fault drills' shared tools: the printed report, and services of our own to break."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from tests.support import free_port, wait_until
from tuanbox.devservices import probes
from tuanbox.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def drill_seconds(name: str, default: float) -> float:
    """An outage length a developer may stretch (``DRILL_<NAME>_S``, e.g. 300 for minutes)."""
    return float(os.environ.get(f"DRILL_{name.upper()}_S", default))


@dataclass
class Drill:
    """What a drill broke and what it verified; printed, and attached to the test report so
    `make drills` and CI's terminal summary both show it."""

    title: str
    node: Any = None  # the pytest item, for user_properties
    broke: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def fault(self, what: str) -> None:
        self.broke.append(what)
        print(f"[drill] BROKE: {what}", flush=True)

    def check(self, what: str, expected: Any, actual: Any) -> None:
        """Assert ``actual == expected`` and record it as verified."""
        assert actual == expected, f"{self.title}: {what}: expected {expected!r}, got {actual!r}"
        shown = repr(actual)
        if len(shown) > 100 and hasattr(actual, "__len__"):
            shown = f"{len(actual)} items, as expected"
        self.checks.append(f"{what}: {shown}")

    def note(self, what: str) -> None:
        self.checks.append(what)

    def summary(self) -> str:
        lines = [f"DRILL {self.title}"]
        lines += [f"  broke:    {b}" for b in self.broke]
        lines += [f"  verified: {c}" for c in self.checks]
        lines.append("  => nothing lost, nothing applied twice")
        return "\n".join(lines)

    def done(self) -> None:
        text = self.summary()
        print("\n" + text, flush=True)
        if self.node is not None:
            self.node.user_properties.append(("drill", text))


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> Drill:
    return Drill(request.node.name, request.node)


def settings_env(settings: Settings) -> dict[str, str]:
    """The TUANBOX_* environment that rebuilds ``settings`` in a child process: every scalar
    that differs from its default (collections keep their defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUANBOX_")}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        default = (
            info.default.get_secret_value() if isinstance(info.default, SecretStr) else info.default
        )
        if value is None or value == default or not isinstance(value, (str, int, float, Path)):
            continue
        env[f"TUANBOX_{name.upper()}"] = str(value)
    return env


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class OwnRedis:
    """A redis-server of a test's own, to kill and restart: with no persistence (a restart loses
    everything) or with every write fsynced before it answers (`aof=True`)."""

    def __init__(self, root: Path, *, aof: bool = False) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # aof: every write on disk before Redis answers (appendfsync always), so a kill -9
        # loses nothing it acknowledged; without it a restart comes back empty.
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        persistence = ["yes", "--appendfsync", "always"] if self.aof else ["no"]
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", *persistence,
             "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, 10, f"redis on {self.port}")

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
        try:
            probes.redis("127.0.0.1", self.port)
        except OSError:
            return False
        return True

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL)
        self.proc = None


class OwnAnvil:
    """An anvil whose chain survives a restart (``--state``: written on exit, loaded on start)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = root / "anvil-state.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = REPO / "node_modules" / ".bin" / "anvil"
        assert binary.exists(), "anvil missing: run `npm ci` (package.json pins it)"
        self.proc = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--chain-id", "31337", "--silent",
             "--state", str(self.state)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, 30, f"anvil on {self.port}")

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "anvil exited"
        try:
            reply = requests.post(
                self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1
            )
        except requests.ConnectionError:
            return False
        return reply.ok

    def stop(self) -> None:
        stop_process(self.proc)  # SIGTERM: anvil writes its state file first
        self.proc = None


class OwnPostgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl) on a free port, restartable.

    PostgreSQL refuses to run as root, so as root the cluster belongs to ``postgres``."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        assert bins, "PostgreSQL server binaries missing (tuanbox services install)"
        self.bin = bins[-1].parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tuanbox-drill-pg-"))
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8"]
        )  # fmt: skip

    def _run(self, argv: list[str]) -> None:
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
             "-l", str(self.root / "pg.log"), "-w", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (a restart clients see as dropped connections);
        ``immediate`` is a crash (no checkpoint; recovery from WAL on the next start)."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
