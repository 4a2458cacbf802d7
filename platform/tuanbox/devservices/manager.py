"""Install (apt, npm), start, check and stop the services Tuanbox runs against, idempotently.

PostgreSQL, Redis and Mosquitto are usually started by the machine; we start them only when
they do not answer. InfluxDB 1.x (Debian `influxdb`), anvil (npm `@foundry-rs/anvil`,
pinned in package.json) and a streaming replica of the PostgreSQL on port 5433
(`pgreplica.py`) are ours: their data, logs and pid files live under `.services/`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuanbox.devservices import probes
from tuanbox.devservices.pgreplica import Replica, ReplicaError

INFLUX_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  run-interval = "10s"
"""


# Debian tools the project runs besides its services: wrk drives the HTTP benchmarks
# (bench/flash_sale.py, bench/group_join.py).
TOOL_PACKAGES: tuple[str, ...] = ("wrk",)


class ServiceError(RuntimeError):
    code = "SERVICE_UNAVAILABLE"


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    apt_packages: tuple[str, ...]
    probe: Callable[[], object]
    start: Callable[[ServiceManager], None]
    owned: bool = False  # started and stopped by us (vs. the machine's own daemons)
    npm: bool = False
    # How an owned service stops when killing its pid file's process group is not the way.
    stop: Callable[[ServiceManager, Callable[[str], None]], bool] | None = None


@dataclass
class ServiceStatus:
    name: str
    url: str
    ok: bool
    detail: str


def _pg_start(_m: ServiceManager) -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise ServiceError("PostgreSQL is installed but has no cluster in /etc/postgresql")
    _run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])


def _redis_start(_m: ServiceManager) -> None:
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    _run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
          "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis"])  # fmt: skip


def _mosquitto_start(_m: ServiceManager) -> None:
    _run(["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"])


def _influx_start(m: ServiceManager) -> None:
    root = m.state_dir / "influxdb"
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "influxdb.conf"
    conf.write_text(INFLUX_CONF.format(root=root, port=m.influx_port, rpc_port=m.influx_port + 2))
    m.spawn("influxdb", [shutil.which("influxd") or "/usr/bin/influxd", "-config", str(conf)])


def _anvil_start(m: ServiceManager) -> None:
    anvil = m.project_dir / "node_modules" / ".bin" / "anvil"
    m.spawn("anvil", [str(anvil), "--host", "127.0.0.1", "--port", str(m.anvil_port),
                      "--chain-id", "31337", "--silent"])  # fmt: skip


def _replica_start(m: ServiceManager) -> None:
    m.replica.start(log=m.log)


def _replica_stop(m: ServiceManager, log: Callable[[str], None]) -> bool:
    return m.replica.stop(log=log)


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)  # noqa: S603


@dataclass
class ServiceManager:
    project_dir: Path
    influx_port: int = 8086
    anvil_port: int = 8545
    replica_port: int = 5433
    state_dir: Path = field(init=False)
    log: Callable[[str], None] = field(default=print, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = self.project_dir / ".services"

    @property
    def replica(self) -> Replica:
        return Replica(self.state_dir, primary_port=5432, port=self.replica_port)

    @property
    def services(self) -> list[Service]:
        influx_url = f"http://127.0.0.1:{self.influx_port}"
        anvil_url = f"http://127.0.0.1:{self.anvil_port}"
        return [
            Service("postgresql", "postgresql://127.0.0.1:5432", ("postgresql",),
                    lambda: probes.postgres("127.0.0.1", 5432), _pg_start),
            Service("redis", "redis://127.0.0.1:6379", ("redis-server",),
                    lambda: probes.redis("127.0.0.1", 6379), _redis_start),
            Service("mosquitto", "mqtt://127.0.0.1:1883", ("mosquitto",),
                    lambda: probes.mqtt("127.0.0.1", 1883), _mosquitto_start),
            Service("influxdb", influx_url, ("influxdb",),
                    lambda: probes.influxdb(influx_url), _influx_start, owned=True),
            Service("anvil", anvil_url, (), lambda: probes.evm(anvil_url), _anvil_start,
                    owned=True, npm=True),
            # After PostgreSQL: a base backup of it, streaming from it (its Debian package
            # brings pg_basebackup and pg_ctl).
            Service("pg-replica", f"postgresql://127.0.0.1:{self.replica_port}", (),
                    self.replica.probe, _replica_start, owned=True, stop=_replica_stop),
        ]  # fmt: skip

    # -- install ---------------------------------------------------------------------------
    def missing_debian_packages(self, extra: tuple[str, ...] = ()) -> list[str]:
        wanted = [p for s in self.services for p in s.apt_packages] + [*TOOL_PACKAGES, *extra]
        return [p for p in wanted if not _dpkg_installed(p)]

    def install(
        self, extra_packages: tuple[str, ...] = (), log: Callable[[str], None] = print
    ) -> None:
        missing = self.missing_debian_packages(extra_packages)
        if missing:
            if os.geteuid() != 0:
                raise ServiceError(
                    "missing Debian packages; run as root or install them: "
                    f"sudo apt-get install -y {' '.join(missing)}"
                )
            log(f"apt-get install {' '.join(missing)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env)  # noqa: S607
            subprocess.run(  # noqa: S603
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],  # noqa: S607
                check=True,
                env=env,
            )
        # Every npm tool of package.json: anvil, axe-core for the browser tests, and
        # swagger-ui-dist, the API docs page's assets (served by the app, no CDN).
        npm_tools = (
            "node_modules/.bin/anvil",
            "node_modules/axe-core/axe.min.js",
            "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
        )
        if not all((self.project_dir / tool).exists() for tool in npm_tools):
            if not shutil.which("npm"):
                raise ServiceError("npm is missing: sudo apt-get install -y nodejs npm")
            log("npm ci (anvil, axe-core and swagger-ui-dist from package-lock.json)")
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],  # noqa: S607
                cwd=self.project_dir,
                check=True,
                # swagger-ui-dist's dependency @scarf/scarf pings an analytics service on
                # install unless told not to (package.json's scarfSettings says so too).
                env={**os.environ, "SCARF_ANALYTICS": "false"},
            )

    # -- lifecycle -------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        out = []
        for svc in self.services:
            try:
                detail = svc.probe()
            except (OSError, ConnectionError, KeyError, ValueError) as exc:
                out.append(ServiceStatus(svc.name, svc.url, False, f"{type(exc).__name__}: {exc}"))
            else:
                out.append(ServiceStatus(svc.name, svc.url, True, str(detail or "answers")))
        return out

    def up(self, log: Callable[[str], None] = print, timeout: float = 30.0) -> list[ServiceStatus]:
        self.log = log
        for svc in self.services:
            if _answers(svc):
                continue
            log(f"starting {svc.name}")
            try:
                svc.start(self)
            except (OSError, subprocess.SubprocessError, ReplicaError) as exc:
                raise ServiceError(f"{svc.name} could not be started: {exc}") from exc
            deadline = time.monotonic() + timeout
            while not _answers(svc):
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"{svc.name} did not answer at {svc.url} within {timeout:.0f}s; "
                        f"see {self.state_dir / 'logs'}"
                    )
                time.sleep(0.2)
        return self.status()

    def down(self, log: Callable[[str], None] = print) -> None:
        """Stop the services we own; the machine's own daemons are left alone."""
        for svc in reversed(self.services):
            if svc.stop is not None:
                svc.stop(self, log)
            elif svc.owned and self._kill(svc.name):
                log(f"stopped {svc.name}")

    def spawn(self, name: str, argv: list[str]) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(  # noqa: S603
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        (self.state_dir / f"{name}.pid").write_text(str(proc.pid))

    def _kill(self, name: str) -> bool:
        pidfile = self.state_dir / f"{name}.pid"
        if not pidfile.exists():
            return False
        pid = int(pidfile.read_text())
        pidfile.unlink()
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
        return True


def _answers(svc: Service) -> bool:
    try:
        svc.probe()
    except (OSError, ConnectionError, KeyError, ValueError):
        return False
    return True


def _dpkg_installed(package: str) -> bool:
    if not shutil.which("dpkg-query"):
        return True  # not Debian: the operator installs by other means, and `up` will tell
    res = subprocess.run(  # noqa: S603
        ["dpkg-query", "-W", "-f=${Status}", package],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout.strip() == "install ok installed"


SERVICES = ("postgresql", "redis", "mosquitto", "influxdb", "anvil", "pg-replica")
