"""Rate limits: a Redis sliding-window limiter and a FastAPI dependency factory."""

from tuanbox.ratelimit.deps import get_redis, limiter_for, rate_limit
from tuanbox.ratelimit.limiter import RateLimiter, check

__all__ = ["RateLimiter", "check", "get_redis", "limiter_for", "rate_limit"]
