"""Liveness (/healthz) and readiness (/readyz): each configured dependency checked in time.

Anyone (a load balancer) learns only whether the process is ready; which dependency is down,
where it lives and what it answered is shown to an ops or admin bearer token only."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tuanbox.errors import DependencyUnavailableError
from tuanbox.ops.auth import principal_from
from tuanbox.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    target: str
    latency_ms: float
    error: str | None = None


def _check_db(settings: Settings, engine: Any) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_redis(settings: Settings, _engine: Any) -> None:
    import redis

    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.readiness_timeout_s,
        socket_connect_timeout=settings.readiness_timeout_s,
    )
    try:
        client.ping()
    finally:
        client.close()


def _check_mqtt(settings: Settings, _engine: Any) -> None:
    # A TCP connect plus an MQTT CONNECT would need credentials; the socket tells if the
    # broker process accepts connections, which is what readiness is about.
    with socket.create_connection(
        (settings.mqtt_host, settings.mqtt_port), timeout=settings.readiness_timeout_s
    ):
        pass


def _check_influx(settings: Settings, _engine: Any) -> None:
    assert settings.influx_url
    resp = httpx.get(f"{settings.influx_url}/ping", timeout=settings.readiness_timeout_s)
    if resp.status_code not in (200, 204):
        raise RuntimeError(f"HTTP {resp.status_code}")


def _check_chain(settings: Settings, _engine: Any) -> None:
    assert settings.chain_rpc_url
    resp = httpx.post(
        settings.chain_rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        timeout=settings.readiness_timeout_s,
    )
    resp.raise_for_status()
    if "result" not in resp.json():
        raise RuntimeError(str(resp.json().get("error")))


def _targets(settings: Settings) -> list[tuple[str, str, Callable[[Settings, Any], None]]]:
    targets: list[tuple[str, str, Callable[[Settings, Any], None]]] = [
        ("database", settings.database_url.split("@")[-1], _check_db),
        ("redis", settings.redis_url.split("@")[-1], _check_redis),
        ("mqtt", f"{settings.mqtt_host}:{settings.mqtt_port}", _check_mqtt),
    ]
    if settings.influx_url:
        targets.append(("influxdb", settings.influx_url, _check_influx))
    if settings.chain_rpc_url:
        targets.append(("chain", settings.chain_rpc_url, _check_chain))
    return targets


async def run_checks(settings: Settings, engine: Any) -> list[CheckResult]:
    async def one(name: str, target: str, fn: Callable[[Settings, Any], None]) -> CheckResult:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.to_thread(fn, settings, engine), timeout=settings.readiness_timeout_s + 0.5
            )
        except Exception as exc:
            return CheckResult(name, False, target, _ms(start), f"{type(exc).__name__}: {exc}")
        return CheckResult(name, True, target, _ms(start))

    return list(await asyncio.gather(*(one(*t) for t in _targets(settings))))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _ops_caller(request: Request, settings: Settings) -> bool:
    """An ops or admin token, checked as everywhere (revocation included). That check needs
    Redis or the database, which may be what is down: then no details, and still an answer."""
    try:
        return principal_from(request, settings) is not None
    except (DependencyUnavailableError, RedisError, SQLAlchemyError) as exc:
        log.warning("readyz: cannot check the caller's token (%s); no details", type(exc).__name__)
        return False


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Every configured dependency answers")
async def readyz(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    results = await run_checks(settings, request.app.state.engine)
    ready = all(r.ok for r in results)
    body: dict[str, Any] = {"status": "ready" if ready else "unavailable"}
    # In a thread: the token's revocation check may wait on Redis or the database.
    if await asyncio.to_thread(_ops_caller, request, settings):
        body["checks"] = {
            r.name: {"ok": r.ok, "target": r.target, "latency_ms": r.latency_ms, "error": r.error}
            for r in results
        }
    headers = {"Cache-Control": "no-store"}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)
