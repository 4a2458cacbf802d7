"""The `rate_limit(...)` dependency factory and the app's shared Redis client."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi import Request

from tuanbox.errors import TuanboxError
from tuanbox.ratelimit.limiter import RateLimiter


def get_redis(request: Request) -> redis.Redis:
    """The app's Redis client, made on first use (never at import) and shared by requests."""
    client: redis.Redis | None = getattr(request.app.state, "redis", None)
    if client is None:
        client = redis.Redis.from_url(request.app.state.settings.redis_url)
        request.app.state.redis = client
    return client


def limiter_for(request: Request) -> RateLimiter:
    return RateLimiter(get_redis(request), request.app.state.settings.rate_limit_prefix)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _user_id(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return str(principal.id)
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    from tuanbox.accounts.tokens import decode_access_token

    try:
        return decode_access_token(request.app.state.settings, header[7:].strip()).id
    except TuanboxError:
        return None  # the route's own auth dependency answers 401; per-IP still applies


def rate_limit(
    name: str,
    *,
    per_user: tuple[int, float] | None = None,
    per_ip: tuple[int, float] | None = None,
) -> Callable[[Request], None]:
    """A dependency limiting this route: `(limit, window_s)` per signed-in user and per IP."""

    def _dependency(request: Request) -> None:
        limiter = limiter_for(request)
        if per_ip is not None:
            limiter.check(f"{name}:ip:{client_ip(request)}", *per_ip)
        if per_user is not None:
            uid = _user_id(request)
            if uid is not None:
                limiter.check(f"{name}:user:{uid}", *per_user)

    return _dependency
