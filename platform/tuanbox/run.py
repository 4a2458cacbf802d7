"""`tuanbox run` (`make run`): the whole platform locally on the embedded defaults — api,
worker, beat, bridge and two simulated lockers (lock board and scanner simulators with an
edge agent each) — over a demo catalogue, until Ctrl-C.

Every child runs in its own process group (a terminal's Ctrl-C reaches only this
supervisor), logs to ``var/run/logs/<name>.log``, and dies with it: on SIGINT or SIGTERM,
or when any child exits, each group gets SIGTERM, and SIGKILL after ``STOP_TIMEOUT_S``.
On Linux the children also get SIGTERM should the supervisor itself be killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis
import typer

from tuanbox.settings import Settings

STOP_TIMEOUT_S = 10.0
START_TIMEOUT_S = 120.0
RUN_DIR = Path("var/run")
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor goes, however it goes."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def children(
    settings: Settings, *, host: str, port: int, public_key: str, name: str
) -> list[Child]:
    """The processes of `make run`, in start order (stopped in reverse)."""
    from tuanbox.run_catalogue import lockers

    bin_dir = Path(sys.executable).parent
    tuanbox, edge = str(bin_dir / "tuanbox"), str(bin_dir / "tuanbox-edge")
    procs = [
        Child("api", [tuanbox, "api", "--host", host, "--port", str(port)]),
        Child("worker", [tuanbox, "worker", "--concurrency", "2"]),
        Child("beat", [tuanbox, "beat", "--schedule", str(RUN_DIR / name / "celerybeat-schedule")]),
        Child("bridge", [tuanbox, "bridge", "--client-id", f"tuanbox-{name}-bridge"]),
    ]
    if settings.flash_order_writes == "stream":
        procs.append(Child("flash-orders", [tuanbox, "flash-orders"]))
    if settings.group_join_writes == "stream":
        procs.append(Child("group-joins", [tuanbox, "group-joins"]))
    for locker_id, _station in lockers(name):
        procs.append(Child(locker_id, [
            edge, "demo", "--workdir", str(RUN_DIR / name / locker_id), "--locker-id",
            locker_id, "--mqtt-host", settings.mqtt_host, "--mqtt-port", str(settings.mqtt_port),
            "--public-key", public_key,
        ]))  # fmt: skip
    return procs


class Supervisor:
    """Starts the children, watches them, and stops them all."""

    def __init__(self, procs: list[Child], env: dict[str, str], log_dir: Path) -> None:
        self.procs = procs
        self.env = env
        self.log_dir = log_dir
        self.stopping = threading.Event()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.procs:
            child.log = (self.log_dir / f"{child.name}.log").open("ab")
            # Our own console scripts, with arguments we built.
            child.proc = subprocess.Popen(  # noqa: S603
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=child.log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: killpg reaches its children
                preexec_fn=_die_with_parent,  # only prctl() runs between fork and exec
            )

    def exited(self) -> Child | None:
        return next((c for c in self.procs if c.proc and c.proc.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM to every group, SIGKILL to what is left after STOP_TIMEOUT_S."""
        running = [c for c in reversed(self.procs) if c.proc is not None]
        for child in running:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                typer.echo(f"  {child.name} did not stop within {STOP_TIMEOUT_S:.0f}s: killed")
            # Whatever it left in its group (Celery's pool, uvicorn's workers) goes too.
            _signal_group(child, signal.SIGKILL)
            child.proc.wait()
        for child in self.procs:
            if child.log is not None:
                child.log.close()


def _signal_group(child: Child, signum: int) -> None:
    if child.proc is None:
        return
    with contextlib.suppress(ProcessLookupError):  # already gone, with its whole group
        os.killpg(child.proc.pid, signum)


def _until(check: Callable[[], Any], timeout: float, what: str, supervisor: Supervisor) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        gone = supervisor.exited()
        if gone is not None:
            raise RuntimeError(f"{gone.name} exited (see {supervisor.log_dir / gone.name}.log)")
        if supervisor.stopping.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"gave up after {timeout:.0f}s waiting for {what} (logs in {supervisor.log_dir}/)"
            )
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except OSError:
        return False


def _lockers_online(settings: Settings, locker_ids: list[str]) -> bool:
    from sqlalchemy import select

    from tuanbox.db.engine import make_engine
    from tuanbox.lockers.models import Locker

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            online = conn.scalars(
                select(Locker.id).where(Locker.id.in_(locker_ids), Locker.online.is_(True))
            ).all()
    finally:
        engine.dispose()
    return len(online) == len(locker_ids)


def run_settings(settings: Settings) -> Settings:
    """The settings `make run` runs on: Redis is `run_redis_url` (database 1 by default), never
    the tests' database, so a `make test` beside it takes none of its tasks or keys."""
    return settings.model_copy(update={"redis_url": settings.run_redis_url})


def child_env(settings: Settings, *, host: str, port: int) -> dict[str, str]:
    """The environment of every child: ours, with the run's Redis, address and base URL."""
    base = f"http://{host}:{port}"
    return {
        **os.environ,
        "TUANBOX_REDIS_URL": settings.redis_url,
        "TUANBOX_API_HOST": host,
        "TUANBOX_API_PORT": str(port),
        "TUANBOX_PUBLIC_BASE_URL": os.environ.get("TUANBOX_PUBLIC_BASE_URL", base),
    }


def prepare(settings: Settings, name: str) -> Any:
    """Migrate the database and load the demo catalogue (run_catalogue)."""
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.db.migrate import upgrade
    from tuanbox.run_catalogue import load
    from tuanbox.shop.cache import bump

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        loaded = load(make_session_factory(engine, settings), settings, name)
    finally:
        engine.dispose()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        bump(client, settings.shop_cache_prefix)  # no page of an earlier run's catalogue stays
    finally:
        client.close()
    return loaded


def run(settings: Settings, *, host: str, port: int, name: str = "run") -> int:
    from tuanbox.fulfilment import pickup
    from tuanbox.run_catalogue import lockers

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    settings = run_settings(settings)
    base = f"http://{host}:{port}"
    typer.secho("Tuanbox: starting the platform locally", bold=True)
    typer.echo(f"  database {settings.database_url.split('@')[-1]}; redis "
               f"{settings.redis_url.split('@')[-1]}; loading the demo catalogue …")  # fmt: skip
    loaded = prepare(settings, name)
    env = child_env(settings, host=host, port=port)
    public_key = pickup.public_key_b64(pickup.load_signing_key(settings))
    supervisor = Supervisor(
        children(settings, host=host, port=port, public_key=public_key, name=name),
        env,
        RUN_DIR / name / "logs",
    )
    supervisor.stopping = stop
    supervisor.start()
    try:
        typer.echo(f"  started {', '.join(c.name for c in supervisor.procs)}; logs in "
                   f"{supervisor.log_dir}/")  # fmt: skip
        _until(lambda: _answers(f"{base}/healthz"), START_TIMEOUT_S, "the api", supervisor)
        ids = [locker_id for locker_id, _ in lockers(name)]
        _until(lambda: _lockers_online(settings, ids), START_TIMEOUT_S, "the lockers", supervisor)
        print_welcome(base, loaded, settings, supervisor.log_dir)
        while not stop.is_set():
            gone = supervisor.exited()
            if gone is not None:
                typer.secho(f"{gone.name} exited; see {supervisor.log_dir / gone.name}.log",
                            fg="red", err=True)  # fmt: skip
                return 1
            stop.wait(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        return 1
    finally:
        typer.echo("stopping …")
        supervisor.stop()
        typer.echo("all processes stopped")


def print_welcome(base: str, loaded: Any, settings: Settings, log_dir: Path) -> None:
    from tuanbox.run_catalogue import OPS_LOGIN, SHOPPER_PHONES, STAFF_LOGIN

    kinds = {"tiered": "tiered group-buy", "fixed": "fixed group-buy", "presale": "pre-sale"}
    lines = [
        "",
        f"Tuanbox is running — open {base}/ on a phone-sized window",
        "",
        "  shop pages",
        f"    home                {base}/",
        *(
            f"    {kinds.get(kind, kind):<19} {base}/c/{cid}"
            for kind, cid in loaded.campaigns.items()
        ),
        f"    flash sale (live)   {base}/f/{loaded.flash_live}",
        f"    flash sale (soon)   {base}/f/{loaded.flash_soon}"
        + (f"  starts {loaded.flash_soon_at:%H:%M:%S} UTC" if loaded.flash_soon_at else ""),
        f"    provenance          {base}{loaded.trace_url}",
        "",
        "  sign in",
        f"    shopper             {base}/signin with phone {' or '.join(SHOPPER_PHONES)};",
        f"                        the code appears at {base}/dev/inbox",
        f"    ops                 {base}/ops/login  {OPS_LOGIN} / {loaded.ops_password}",
        f"    merchant staff      POST {base}/api/v1/auth/token  {STAFF_LOGIN} / "
        f"{loaded.staff_password}",
        "",
        "  for developers",
        f"    sent messages       {base}/dev/inbox   (OTP and pickup codes; development only)",
        f"    API docs            {base}/api/v1/docs",
        f"    lockers             {', '.join(loaded.lockers)} (simulated; logs in {log_dir}/)",
        "",
        "Ctrl-C stops everything.",
    ]
    if settings.env != "development":
        lines.append(f"(TUANBOX_ENV={settings.env}: /dev/inbox exists only in development)")
    typer.echo("\n".join(lines))
