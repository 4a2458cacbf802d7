"""Redis adapters for flash-sale counters (blocking and asyncio): run the Lua scripts and
translate Redis errors."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import redis

from tuanbox.errors import DependencyUnavailableError
from tuanbox.flashsale import lua


class FlashCounters:
    """The Redis side of every flash sale; one instance per process, built by entry points."""

    def __init__(self, client: redis.Redis, prefix: str = "tuanbox") -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(lua.ADMIT)
        self._release = client.register_script(lua.RELEASE)
        self._reload = client.register_script(lua.RELOAD)

    @classmethod
    def from_url(cls, url: str, prefix: str = "tuanbox") -> FlashCounters:
        return cls(
            redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), prefix
        )

    def keys(self, sale_id: str) -> list[str]:
        return lua.keys(sale_id, self._prefix)

    def reserve(
        self, sale_id: str, *, user_id: str, request_id: str, qty: int, per_user_limit: int
    ) -> lua.ReserveResult:
        admission = Admission(user_id, request_id, qty, per_user_limit)
        try:
            raw = self._reserve(
                keys=admission.keys(sale_id, self._prefix), args=admission.args(sale_id)
            )
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc
        return lua.parse_reserve(raw)

    def release(self, sale_id: str, request_id: str) -> int:
        """Give a reservation back; a second call for the same request restores nothing."""
        try:
            return int(self._release(keys=self.keys(sale_id), args=[request_id]))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc

    def load(
        self,
        sale_id: str,
        *,
        remaining: int,
        users: Mapping[str, int],
        requests: Mapping[str, lua.Held],
        only_if_missing: bool = False,
    ) -> bool:
        """Replace the counters with the database's view (initial load and reconciliation);
        with `only_if_missing`, only when Redis has no counters for the sale. True if loaded."""
        args: list[object] = ["missing" if only_if_missing else "force", remaining, len(users)]
        for user, qty in users.items():
            args += [user, qty]
        for request_id, held in requests.items():
            args += [request_id, held.encode()]
        try:
            return bool(self._reload(keys=self.keys(sale_id), args=args))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc

    def snapshot(self, sale_id: str) -> tuple[int | None, dict[str, int], dict[str, lua.Held]]:
        """Stock, per-user totals and request ids as Redis has them (for reconciliation)."""
        stock_key, users_key, reqs_key = self.keys(sale_id)
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.get(stock_key)
            pipe.hgetall(users_key)
            pipe.hgetall(reqs_key)
            stock, users, reqs = pipe.execute()
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc
        return (
            int(stock) if stock is not None else None,
            {k.decode(): int(v) for k, v in users.items()},
            {k.decode(): lua.Held.decode(v.decode()) for k, v in reqs.items()},
        )

    def server_time(self) -> int:
        """Redis's clock (seconds), the one the Lua script stamps reservations with."""
        try:
            seconds, _ = self._client.time()
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc
        return int(seconds)

    def queued(self, sale_id: str) -> dict[str, str]:
        """Request id → stream entry id of the winners whose orders wait on the sale's stream
        (stream order writes; entries leave the stream once their order is committed)."""
        try:
            entries = self._client.xrange(lua.stream_key(sale_id, self._prefix))
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc
        return {fields[b"req"].decode(): entry_id.decode() for entry_id, fields in entries}

    def forget(self, sale_id: str) -> None:
        self._client.delete(*self.keys(sale_id), lua.stream_key(sale_id, self._prefix))

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class Admission:
    """One call of the admission script: the request, and the checks that come before it."""

    user_id: str
    request_id: str
    qty: int
    per_user_limit: int
    token_version: int = -1  # -1: no revocation check
    revocation_key: str = ""
    user_window: tuple[str, int] | None = None  # (key of the limit's GCRA TAT, limit)
    ip_window: tuple[str, int] | None = None
    window_us: int = 10_000_000
    limits_only: bool = False
    queue: tuple[str, str] | None = None  # (reservation id, order id): order via the stream
    station_id: str | None = None
    # Members' early access: before the sale's start, the script admits only a shopper whose
    # membership marker runs past now, within `early_s` of the start.
    member_key: str = ""
    opens_at_s: int = 0  # the start (epoch seconds) while not started; 0: no check
    early_s: int = 0

    def keys(self, sale_id: str, prefix: str) -> list[str]:
        base = lua.keys(sale_id, prefix)
        unused = base[0]  # a key the script will not touch: the check is off
        return [
            *base,
            lua.stream_key(sale_id, prefix),
            self.revocation_key or unused,
            self.user_window[0] if self.user_window else unused,
            self.ip_window[0] if self.ip_window else unused,
            self.member_key or unused,
        ]

    def args(self, sale_id: str) -> list[str | int]:
        return [
            self.user_id,
            self.request_id,
            self.qty,
            self.per_user_limit,
            self.token_version if self.revocation_key else -1,
            self.user_window[1] if self.user_window else 0,
            self.ip_window[1] if self.ip_window else 0,
            self.window_us,
            "limits" if self.limits_only else "admit",
            ":".join(self.queue) if self.queue else "",
            self.station_id or "",
            sale_id,
            self.opens_at_s if self.member_key else 0,
            self.early_s,
        ]


class CallsRedis(Protocol):
    """An asyncio Redis connection: one command, its reply (`tuanbox.api.redis_async`)."""

    async def call(self, *args: str | bytes | int) -> Any: ...


class AsyncFlashCounters:
    """The admission script on an asyncio Redis connection: the API's hot path, one round
    trip, no thread. One instance per connection (per process and event loop)."""

    def __init__(self, client: CallsRedis, prefix: str = "tuanbox") -> None:
        self.client = client
        self._prefix = prefix

    async def _run(self, script: str, keys: list[str], args: list[str | int]) -> Any:
        try:
            try:
                return await self.client.call("EVALSHA", _sha(script), len(keys), *keys, *args)
            except redis.ResponseError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                # Redis restarted (or flushed its scripts): EVAL runs and caches it again.
                return await self.client.call("EVAL", script, len(keys), *keys, *args)
        except redis.RedisError as exc:
            raise DependencyUnavailableError(f"flash-sale counters unavailable: {exc}") from exc

    async def admit(self, sale_id: str, admission: Admission) -> lua.ReserveResult:
        raw = await self._run(
            lua.ADMIT, admission.keys(sale_id, self._prefix), admission.args(sale_id)
        )
        return lua.parse_reserve(raw)

    async def release(self, sale_id: str, request_id: str) -> int:
        """Give a reservation back; a second call for the same request restores nothing."""
        return int(await self._run(lua.RELEASE, lua.keys(sale_id, self._prefix), [request_id]))


@lru_cache(maxsize=16)
def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - how Redis names scripts
