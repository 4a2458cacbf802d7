"""Redis adapter for flash-sale counters: runs the Lua scripts and translates Redis errors."""

from __future__ import annotations

from collections.abc import Mapping

import redis

from tuanbox.errors import DependencyUnavailableError
from tuanbox.flashsale import lua


class FlashCounters:
    """The Redis side of every flash sale; one instance per process, built by entry points."""

    def __init__(self, client: redis.Redis, prefix: str = "tuanbox") -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(lua.RESERVE)
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
        try:
            raw = self._reserve(
                keys=self.keys(sale_id), args=[user_id, request_id, qty, per_user_limit]
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

    def forget(self, sale_id: str) -> None:
        self._client.delete(*self.keys(sale_id))

    def close(self) -> None:
        self._client.close()
