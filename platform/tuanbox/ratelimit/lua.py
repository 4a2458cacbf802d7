"""The caller's checks as a Lua fragment, shared by the scripts of the burst paths.

The join route's own check (`api.burst.CHECKS`) and the group seats' admission script
(`groupbuy.seatlua.ADMIT`) run the same steps over the same keys, so that a join answers the
same whichever script admits it: the token's revocation marker, then the per-shopper and the
per-IP sliding windows (sorted sets over Redis TIME, the algorithm and keys of
`tuanbox.ratelimit`); only a request a window admits is logged in it, so a request refused per
shopper spends nothing of the IP's window.
"""

from __future__ import annotations


def caller_checks(*, key: int, arg: int, limited: int) -> str:
    """Lua that returns `{-6}` for a revoked token and `{limited, window (1 shopper, 2 IP),
    microseconds until it admits again}` past a window, and falls through otherwise.

    KEYS[key .. key + 2]: revocation marker, per-shopper window, per-IP window.
    ARGV[arg .. arg + 5]: token version, shopper limit, its window (µs), IP limit, its window
    (µs), a nonce keeping one request's log entry apart from another's.
    The script must have put Redis TIME in `t` before."""
    return f"""
local floor = redis.call('GET', KEYS[{key}])
if floor and (tonumber(floor) == nil or tonumber(ARGV[{arg}]) < tonumber(floor)) then
  return {{-6}}
end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, 2 do
  local limit, span = tonumber(ARGV[{arg - 1} + 2 * i]), tonumber(ARGV[{arg} + 2 * i])
  local key = KEYS[{key} + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {{{limited}, i, tonumber(oldest[2]) + span - now}}
  end
  redis.call('ZADD', key, now, now .. ':' .. ARGV[{arg + 5}])
  redis.call('PEXPIRE', key, math.ceil(span / 1000))
end
"""
