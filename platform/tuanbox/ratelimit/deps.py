"""The `rate_limit(...)` dependency factory and the app's shared Redis client."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi import Request

from tuanbox.errors import TuanboxError
from tuanbox.ratelimit.limiter import RateLimiter
from tuanbox.settings import Settings


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
    """The client's IP for per-IP limits, risk rules, sign-in guards and payments.

    The one place it is derived: the ASGI peer, which uvicorn's proxy-headers middleware
    (``tuanbox api``) has already replaced by the rightmost X-Forwarded-For address that is
    not a trusted proxy when, and only when, the TCP peer is in TUANBOX_TRUSTED_PROXIES."""
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


# `(limit, window_s)`; the limit is read from the app's settings when given as a function,
# so every production limit is a documented setting (`lambda s: s.group_join_per_ip_per_min`).
Limit = tuple[int | Callable[[Settings], int], float]


def _resolve(limit: Limit, settings: Settings) -> tuple[int, float]:
    count, window_s = limit
    return (count if isinstance(count, int) else count(settings)), window_s


def rate_limit(
    name: str,
    *,
    per_user: Limit | None = None,
    per_ip: Limit | None = None,
) -> Callable[[Request], None]:
    """A dependency limiting this route per signed-in user first, then per IP."""

    def _dependency(request: Request) -> None:
        limiter = limiter_for(request)
        settings: Settings = request.app.state.settings
        if per_user is not None:
            uid = _user_id(request)
            if uid is not None:
                limiter.check(f"{name}:user:{uid}", *_resolve(per_user, settings))
        if per_ip is not None:
            limiter.check(f"{name}:ip:{client_ip(request)}", *_resolve(per_ip, settings))

    return _dependency
