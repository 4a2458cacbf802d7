"""The group-join Redis scripts: one atomic admission step, its compensation and a reload.

With TUANBOX_GROUP_JOIN_WRITES=stream a group's free seats are held in Redis (loaded when
its opening commits, or from the database the first time a join meets the group) and a join
is admitted by one script: the caller's revocation and windows, a repeated Idempotency-Key,
the group's deadline, one seat per shopper, a free seat; the winner's seat is taken and its
join queued on the joins stream in the same step, so a seat never exists in Redis without
its queued join, nor the other way round. The stream's
consumer (`groupbuy.joinstream`) writes the rows; the database stays the record (its
guarded seat UPDATE and CHECK still refuse overfill whatever Redis says).

A group's keys share one hash tag (`{gb:<id>}`); the joins stream is one key for all groups,
and the caller's revocation marker and rate-limit windows are the caller's, all outside the
group's slot, which one Redis (or a primary with replicas) allows and a Redis Cluster would
not (the flash-sale script reads its rate-limit keys the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tuanbox.ratelimit import lua as ratelimit_lua

# First the caller's checks, the Lua of the join route's `api.burst.check_caller`
# (`ratelimit.lua.caller_checks`: same keys, windows and order), so a join costs one round trip:
# the token's revocation marker, then the per-shopper and per-IP windows of "group-join"
# (shared with openings, whose `rate_limit` dependency logs into the same sorted sets); only
# a request a window admits is logged in it, so a request refused per shopper spends nothing
# of the IP's window. A refused caller takes no seat. Token version -1 skips the checks
# (the second call after loading a group, whose first call made them).
# KEYS: 1 seat hash (left, until, ver), 2 members hash (user -> request id),
#       3 requests hash (request id -> entry), 4 joins stream, 5 revocation marker,
#       6 per-shopper window, 7 per-IP window
# ARGV: 1 user id, 2 request id, 3 qty, 4 reservation id, 5 group id, 6 station id ("" none),
#       7 IP blind index ("" none), 8 device blind index ("" none), 9 Idempotency-Key,
#       10 request digest, 11 token version (-1: no checks), 12 per-shopper limit,
#       13 its window (us), 14 per-IP limit, 15 its window (us), 16 nonce
# Returns {status[, seats left | entry]}; REVOKED {-6}; RATE_LIMITED {-5, window (1 shopper,
# 2 IP), microseconds until it admits again}.
ADMIT = (
    """
local t = redis.call('TIME')
if tonumber(ARGV[11]) >= 0 then"""
    + ratelimit_lua.caller_checks(key=5, arg=11, limited=-5)
    + """end
local prior = redis.call('HGET', KEYS[3], ARGV[2])
if prior then return {2, prior} end
local left = redis.call('HGET', KEYS[1], 'left')
if not left then return {-3} end
if tonumber(redis.call('HGET', KEYS[1], 'until') or '0') <= tonumber(t[1]) then return {-4} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {-2} end
if tonumber(left) < 1 then return {-1} end
left = redis.call('HINCRBY', KEYS[1], 'left', -1)
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2],
  ARGV[1] .. '|' .. ARGV[3] .. '|' .. t[1] .. '|' .. ARGV[4] .. '|' .. ARGV[10] .. '|' .. left)
redis.call('XADD', KEYS[4], '*', 'group', ARGV[5], 'req', ARGV[2], 'user', ARGV[1],
  'qty', ARGV[3], 'rid', ARGV[4], 'station', ARGV[6], 'ip', ARGV[7], 'device', ARGV[8],
  'key', ARGV[9], 'digest', ARGV[10])
return {1, left}
"""
)

# Gives a refused join's seat back, exactly once: the request's entry is marked released
# (kept, so a retry of the same key is a replay, not a new seat) and the seat is freed only
# if the shopper's seat is still this request's. KEYS: seat, members, requests; ARGV:
# request id. Returns 1 when a seat was freed, 0 otherwise.
RELEASE = """
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry or string.sub(entry, 1, 1) == '!' then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], '!' .. entry)
local user = string.match(entry, '^([^|]+)')
if redis.call('HGET', KEYS[2], user) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], user)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'left', 1)
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
end
return 1
"""

# Replaces a group's seats and members with the database's view (plus the joins still
# queued), atomically. "missing": only if the group is not loaded (API processes that all
# meet an unloaded group load it once). "force": only if no admission or release ran since
# the caller read `ver` (ARGV 2), so a reconciliation never wipes a seat taken meanwhile.
# KEYS: seat, members, requests. ARGV: mode, ver, left, until (epoch s), expire at (epoch s),
# then user/request pairs. Returns 1 loaded, 0 left alone (already loaded), -1 raced.
RELOAD = """
if ARGV[1] == 'missing' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[1] == 'force' and (redis.call('HGET', KEYS[1], 'ver') or '') ~= ARGV[2] then
  return -1
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'left', ARGV[3], 'until', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'ver', 1)
local i = 6
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for k = 1, 3 do redis.call('EXPIREAT', KEYS[k], ARGV[5]) end
return 1
"""


# A seat the database took (1) or freed (0) outside the stream, told to a loaded group once
# its transaction committed; idempotent by the member: a shopper already counted (or
# already gone, say by a reconciliation that ran first) changes nothing. `left` may go below
# zero when the database seated someone while Redis had admitted the last seat to a queued
# join: that join is then refused by the database and its release brings `left` back.
# KEYS: seat, members. ARGV: 1 or 0, user id. Returns 1 when changed, 0 otherwise.
MARK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then
  if redis.call('HSETNX', KEYS[2], ARGV[2], 'db') == 0 then return 0 end
  redis.call('HINCRBY', KEYS[1], 'left', -1)
else
  if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return 0 end
  redis.call('HINCRBY', KEYS[1], 'left', 1)
end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
return 1
"""


class SeatStatus(IntEnum):
    REVOKED = -6  # the caller's token was revoked (401)
    RATE_LIMITED = -5  # past the per-shopper or per-IP window (429)
    CLOSED = -4  # past the group's deadline, or no longer open
    NOT_LOADED = -3
    ALREADY_MEMBER = -2
    FULL = -1
    ADMITTED = 1
    DUPLICATE = 2


@dataclass(frozen=True)
class Entry:
    """One request's seat as Redis holds it (`released`: given back after a refusal)."""

    user_id: str
    qty: int
    at: int  # Redis server time, seconds
    reservation_id: str
    digest: str
    seats_left: int
    released: bool = False

    @classmethod
    def decode(cls, raw: str) -> Entry:
        released = raw.startswith("!")
        user, qty, at, rid, digest, left = raw.lstrip("!").split("|")
        return cls(user, int(qty), int(at), rid, digest, int(left), released)


@dataclass(frozen=True)
class SeatResult:
    status: SeatStatus
    seats_left: int = 0
    prior: Entry | None = None
    window: int = 0  # RATE_LIMITED: 1 per shopper, 2 per IP
    wait_us: int = 0  # RATE_LIMITED: until that window admits again


@dataclass(frozen=True)
class Checks:
    """The caller's checks the script makes before the seat: KEYS 5-7 (revocation marker,
    per-shopper and per-IP windows) and ARGV 11-16 (token version, limit and window in
    microseconds of each, nonce), as `api.burst.caller_checks` builds them."""

    keys: tuple[str, str, str]
    args: tuple[int, int, int, int, int, str]


def no_checks(seat_key: str) -> Checks:
    """No caller checks (token version -1); the seat key stands in for the unused keys."""
    return Checks((seat_key, seat_key, seat_key), (-1, 0, 0, 0, 0, ""))


def parse(raw: list[int | bytes]) -> SeatResult:
    status = SeatStatus(int(raw[0]))
    if status is SeatStatus.RATE_LIMITED:
        return SeatResult(status, window=int(raw[1]), wait_us=int(raw[2]))
    if status is SeatStatus.DUPLICATE:
        value = raw[1]
        text = value.decode() if isinstance(value, bytes) else str(value)
        return SeatResult(status, prior=Entry.decode(text))
    return SeatResult(status, int(raw[1]) if len(raw) > 1 else 0)


def keys(group_id: str, prefix: str = "tuanbox") -> list[str]:
    tag = f"{{gb:{group_id}}}"
    return [f"{prefix}:gb:{tag}:seat", f"{prefix}:gb:{tag}:members", f"{prefix}:gb:{tag}:reqs"]


def stream_key(prefix: str = "tuanbox") -> str:
    """The queue of admitted joins whose rows are not yet written (all groups)."""
    return f"{prefix}:gb:joins"
