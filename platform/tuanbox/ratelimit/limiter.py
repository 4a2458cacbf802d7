"""A sliding-window-log limiter: one atomic Lua step per check, clocked by Redis itself."""

from __future__ import annotations

import math
import uuid
from typing import cast

import redis

from tuanbox.errors import DependencyUnavailableError, RateLimitedError

# Redis TIME keeps every API replica on the same clock. Only admitted requests are logged,
# so a client hammering a closed window does not push its own reopening further away.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""

PREFIX = "tuanbox:rl:"


class RateLimiter:
    """Checks named windows in Redis; raises RateLimitedError with whole seconds to wait."""

    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW)

    def check(self, key: str, limit: int, window_s: float) -> int:
        """Admit one request under `key` or raise; returns how many remain in the window."""
        try:
            allowed, remaining, wait_us = cast(
                list[int],
                self._script(
                    keys=[self._prefix + key],
                    args=[int(window_s * 1_000_000), limit, uuid.uuid4().hex],
                ),
            )
        except redis.RedisError as exc:
            raise DependencyUnavailableError("rate limiter unavailable") from exc
        if not allowed:
            retry_after = max(1, math.ceil(int(wait_us) / 1_000_000))
            raise RateLimitedError(
                f"rate limit exceeded for {key.split(':', 1)[0]}; retry in {retry_after} s",
                retry_after=retry_after,
            )
        return int(remaining)


def check(client: redis.Redis, key: str, limit: int, window_s: float) -> int:
    return RateLimiter(client).check(key, limit, window_s)
