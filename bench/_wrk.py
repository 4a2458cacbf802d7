"""Shared by the HTTP benchmarks: a production-mode `tuanbox api`, a throwaway database, wrk.

The server runs as `tuanbox api --workers N` with TUANBOX_ENV=production and secrets
generated for the run. Production also requires a payment provider and an SMS gateway; the
flash-sale and group-join paths call neither, so both point at a closed loopback port
(https://127.0.0.1:9): a stray call fails at once instead of reaching anything. The WeChat
Pay merchant key is a fresh RSA key, the APIv3 key 32 random bytes.

wrk (Debian package, installed by `tuanbox services install`) drives the load with the Lua
scripts in bench/lua/; their `done` hook prints one JSON line (percentiles from wrk's latency
histogram, answers by status and problem code), parsed here.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

REPO = Path(__file__).resolve().parents[1]
LUA_DIR = REPO / "bench" / "lua"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED = "https://127.0.0.1:9"  # nothing listens: gateways these paths never call


@contextmanager
def durable_redis() -> Iterator[str]:
    """A redis-server of the bench's own with `appendonly yes` and `appendfsync always`:
    every write is on disk before Redis answers it (the stream path's durability)."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as root:
        port = free_port()
        proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", root],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)  # polling readiness with a deadline
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def production_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """TUANBOX_* for a production-mode server with secrets generated now."""
    signing = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    env = {
        "TUANBOX_ENV": "production",
        "TUANBOX_LOG_FORMAT": "json",
        "TUANBOX_LOG_LEVEL": "WARNING",
        "TUANBOX_DATABASE_URL": database_url,
        "TUANBOX_REDIS_URL": REDIS_URL,
        "TUANBOX_SECRET_KEY": secrets.token_urlsafe(48),
        "TUANBOX_PII_KEY": secrets.token_urlsafe(48),
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(48),
        "TUANBOX_PICKUP_SIGNING_KEY": base64.b64encode(signing).decode(),
        "TUANBOX_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TUANBOX_API_HOST": "127.0.0.1",
        "TUANBOX_API_PORT": str(port),
        "TUANBOX_RATE_LIMIT_PREFIX": f"bench{uuid.uuid4().hex[:6]}:rl:",
        "TUANBOX_PAYMENT_PROVIDERS": "wechat",
        "TUANBOX_WECHATPAY_MCHID": "1900000109",
        "TUANBOX_WECHATPAY_APPID": "wxbench000000000",
        "TUANBOX_WECHATPAY_MERCHANT_SERIAL_NO": secrets.token_hex(20).upper(),
        "TUANBOX_WECHATPAY_PRIVATE_KEY": merchant_key.decode(),
        "TUANBOX_WECHATPAY_APIV3_KEY": secrets.token_hex(16),
        "TUANBOX_WECHATPAY_GATEWAY_URL": CLOSED,
        "TUANBOX_WECHATPAY_NOTIFY_URL": f"{CLOSED}/api/v1/payments/wechat/webhook",
        "TUANBOX_SMS_BACKEND": "gateway",
        "TUANBOX_SMS_GATEWAY_URL": CLOSED,
        "TUANBOX_SMS_ACCESS_KEY_ID": "bench",
        "TUANBOX_SMS_ACCESS_KEY_SECRET": secrets.token_urlsafe(24),
        "TUANBOX_SMS_SIGN_NAME": "Tuanbox",
        "TUANBOX_SMS_TEMPLATES": json.dumps(
            {"otp": "SMS_0001", "erasure_code": "SMS_0003", "pickup_ready": "SMS_0002"}
        ),
    }
    env.update(extra)
    return env


def settings_from(env: dict[str, str]) -> Any:
    """The server's own Settings (same secrets), to mint tokens the server accepts."""
    from tuanbox.settings import Settings

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TUANBOX_")}
    os.environ.update(env)
    try:
        return Settings(_env_file=None)
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin() -> sa.Engine:
    return sa.create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A PostgreSQL database migrated to head for this run, dropped afterwards."""
    from tuanbox.db.migrate import upgrade

    name = f"tuanbox_bench_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tuanbox() -> str:
    found = Path(sys.executable).with_name("tuanbox")
    return str(found) if found.exists() else (shutil.which("tuanbox") or "tuanbox")


@dataclass
class Process:
    """A `tuanbox` subcommand running for the bench."""

    popen: subprocess.Popen[bytes]
    argv: list[str]
    single: bool = False  # serves from its own process

    def workers(self) -> list[int]:
        """The process's children that are uvicorn workers (not multiprocessing's resource
        tracker), by pid."""
        if self.single:
            return [self.popen.pid]
        path = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        try:
            children = [int(p) for p in path.read_text().split()]
        except OSError:
            return []
        found = []
        for pid in children:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                found.append(pid)
        return found

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(argv: list[str], env: dict[str, str]) -> Process:
    """Start `tuanbox <argv>` with these settings (the bench's own TUANBOX_* are dropped)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TUANBOX_")}
    popen = subprocess.Popen(
        [_tuanbox(), *argv],
        env={**base, **env},
        cwd=REPO,
    )
    return Process(popen, argv)


@contextmanager
def api_server(env: dict[str, str], workers: int) -> Iterator[tuple[str, Process]]:
    """`tuanbox api --workers N` on the env's port until the block ends; yields its URL."""
    port = env["TUANBOX_API_PORT"]
    proc = start(["api", "--workers", str(workers), "--port", port], env)
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: on the shared box at load 15-20 importing the app takes over a minute.
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise SystemExit("tuanbox api did not start")
            time.sleep(0.1)  # polling readiness with a deadline
        # uvicorn with one worker serves from its own process; with more, from children.
        while workers > 1 and len(proc.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        if workers == 1:
            proc.single = True
        yield base, proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: wrk's own rate and latency histogram, and the answers by status/code."""

    rate: float  # responses/s over the timed span
    seconds: float
    responses: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    counts: dict[str, int]
    errors: dict[str, int]
    extra: int = 0  # requests a fixed-count script sent past its quota (its retries)

    def describe(self) -> str:
        # wrk counts every answer >= 400 as a "status" error: those are in `counts`.
        errors = {k: v for k, v in self.errors.items() if v and k != "status"}
        return (
            f"{self.rate:,.0f} req/s ({self.responses:,} answers in {self.seconds:.1f} s), "
            f"p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.0f} ms; answers {dict(sorted(self.counts.items()))}"
            + (f"; socket errors {errors}" if errors else "")
        )


def run_wrk(
    base: str,
    script: str,
    *,
    threads: int = 2,
    connections: int = 64,
    duration_s: int = 15,
    env: dict[str, str] | None = None,
    by_clock: bool = False,
) -> WrkResult:
    """Run wrk with bench/lua/<script>; `by_clock` takes the rate from the scripts' own
    monotonic clock (first request to last counted answer) instead of wrk's whole duration,
    for scripts that stop their threads after a fixed number of answers."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: run `tuanbox services install` (Debian package wrk)")
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_DIR / script),
            base,
        ],
        env={**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **(env or {})},
        capture_output=True,
        text=True,
        timeout=duration_s + 120,
        check=True,
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK-RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    raw = json.loads(line.removeprefix("WRK-RESULT "))
    if by_clock:
        seconds = max(raw["last_us"] - raw["first_us"], 1) / 1e6
        rate = raw["responses"] / seconds
    else:
        seconds = raw["duration_us"] / 1e6
        rate = raw["requests"] / seconds
    return WrkResult(
        rate=rate,
        seconds=seconds,
        responses=raw["responses"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        counts={str(k): int(v) for k, v in raw["counts"].items()},
        errors={str(k): int(v) for k, v in raw["errors"].items()},
        extra=int(raw.get("extra", 0)),
    )


def memory_kib(pids: list[int]) -> dict[int, tuple[int, int]]:
    """Resident set and its peak (VmRSS, VmHWM) per process, in KiB."""
    found: dict[int, tuple[int, int]] = {}
    for pid in pids:
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
        except OSError:
            continue
        found[pid] = (int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0]))
    return found


@dataclass(frozen=True)
class CpuClock:
    """CPU seconds (user + system) used so far by the API workers, the Redis server and this
    process's finished children (wrk, once run_wrk has returned)."""

    workers: float
    redis: float
    children: float

    @classmethod
    def now(cls, pids: list[int], redis_url: str) -> CpuClock:
        import redis

        ticks = os.sysconf("SC_CLK_TCK")
        workers = 0.0
        for pid in pids:
            try:
                # Fields after the command name (which may hold spaces): utime, stime at 14, 15.
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            workers += (int(fields[11]) + int(fields[12])) / ticks
        client = redis.Redis.from_url(redis_url)
        try:
            info = client.info("cpu")
        finally:
            client.close()
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            workers,
            float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            used.ru_utime + used.ru_stime,
        )

    def per_answer_us(self, later: CpuClock, answers: int) -> tuple[float, float, float]:
        """(API workers, Redis, wrk) CPU microseconds per answer between two readings."""
        n = max(answers, 1)
        return (
            (later.workers - self.workers) / n * 1e6,
            (later.redis - self.redis) / n * 1e6,
            (later.children - self.children) / n * 1e6,
        )


def machine() -> str:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()} {os.cpu_count()} CPU, "
        f"Python {platform.python_version()}; uptime:{uptime.strip().split('up', 1)[-1]}"
    )
