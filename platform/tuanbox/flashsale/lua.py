"""The flash-sale Redis scripts: one atomic admission step, its compensation and a reload.

A sale's keys share one hash tag (`{fs:<id>}`) so a Redis Cluster keeps them on one slot.
The admission script also reads the caller's revocation marker and rate-limit windows, so a
request costs one round trip; those keys live outside the sale's slot, which one Redis (or
a primary with replicas) allows and a Redis Cluster would not.
Redis only admits or turns away buyers fast; the database remains the record (see services).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# The one admission step: token revocation, per-user then per-IP rate limits, then the sale:
# a repeated request id, the per-user limit and the stock. A winner's units are taken and,
# with order writes on the stream, its order queued in the same step: a reservation never
# exists without its queued order, nor the other way round.
# The rate limits are GCRA (generic cell rate algorithm) over Redis TIME: a key holds one
# number, the limit's theoretical arrival time (TAT, microseconds); an admitted request moves
# it on by one interval (window / limit), and a request is admitted while the TAT stays
# within one window of now. That allows a burst of `limit` at once, then one request per
# interval: "5 per 10 s" is 5 at once, then one every 2 s. O(1) time and memory per key
# (the sorted-set window log it replaces kept one member per admitted request: tens of
# thousands for one carrier-NAT IP under a sale). Only admitted requests move the TAT, so a
# client hammering a closed limit does not push its own reopening further away, and a request
# refused by the per-user limit spends nothing of the per-IP one.
# KEYS: stock, per-user totals (hash), request ids (hash), orders stream, revocation marker,
#       per-user limit's TAT, per-IP limit's TAT
# ARGV: 1 user id, 2 request id, 3 qty, 4 per-user limit, 5 token version (-1: no check),
#       6 per-user rate limit (0: none), 7 per-IP rate limit (0: none), 8 window (us),
#       9 "admit" | "limits" (only the checks before the sale),
#       10 "<reservation id>:<order id>" to queue the order on the stream ("" to not),
#       11 station id ("" for none), 12 sale id, 13 the sale's start (Redis seconds) while
#       it has not started (0: started, no check), 14 members' early window (seconds)
# KEYS 8: the shopper's membership marker (its value: the membership's end, Redis seconds);
#       read only before the start, so the open sale pays for it nothing but a key name.
# Returns {status, remaining, user_total[, entry]}; for RATE_LIMITED {status, which, wait us}.
ADMIT = """
local t = redis.call('TIME')
local version = tonumber(ARGV[5])
if version >= 0 then
  local floor = redis.call('GET', KEYS[5])
  if floor and (tonumber(floor) == nil or version < tonumber(floor)) then return {-6, 0, 0} end
end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local span = tonumber(ARGV[8])
for i = 1, 2 do
  local limit = tonumber(ARGV[5 + i])
  if limit > 0 then
    local key = KEYS[5 + i]
    -- a whole number of microseconds, so that `limit` intervals never exceed the window
    local interval = math.max(1, math.floor(span / limit))
    local tat = tonumber(redis.call('GET', key) or '0') or 0
    if tat < now then tat = now end
    local admits_at = tat + interval - interval * limit
    if now < admits_at then return {-4, i, admits_at - now} end
    tat = tat + interval
    redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  end
end
if ARGV[9] == 'limits' then return {0, 0, 0} end
local opens = tonumber(ARGV[13])
if opens > 0 and tonumber(t[1]) < opens then
  local member_until = tonumber(redis.call('GET', KEYS[8]) or '0') or 0
  if tonumber(t[1]) < opens - tonumber(ARGV[14]) or member_until <= tonumber(t[1]) then
    return {-7, 0, 0}
  end
end
local prior = redis.call('HGET', KEYS[3], ARGV[2])
local stock = redis.call('GET', KEYS[1])
if not stock then return {-3, 0, 0} end
stock = tonumber(stock)
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if prior then return {2, stock, used, prior} end
local qty = tonumber(ARGV[3])
if used + qty > tonumber(ARGV[4]) then return {-2, stock, used} end
if stock < qty then return {-1, stock, used} end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
-- user:qty:seconds[:reservation:order], so reconciliation can tell an in-flight request
-- from an orphan, and a replay on the stream path can answer without the database
local entry = ARGV[1] .. ':' .. qty .. ':' .. t[1]
if ARGV[10] ~= '' then
  entry = entry .. ':' .. ARGV[10]
  local rid, oid = string.match(ARGV[10], '^([^:]+):([^:]+)$')
  redis.call('XADD', KEYS[4], '*', 'sale', ARGV[12], 'req', ARGV[2], 'user', ARGV[1],
    'qty', qty, 'rid', rid, 'oid', oid, 'station', ARGV[11], 'at', t[1])
end
redis.call('HSET', KEYS[3], ARGV[2], entry)
return {1, stock - qty, used + qty}
"""

# Gives a reservation back exactly once: only the call that deletes the request id restores.
# KEYS: stock, per-user totals, request ids; ARGV: request id. Returns qty restored (0 if none).
RELEASE = """
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry then return 0 end
local user, qty = string.match(entry, '^([^:]+):(%d+)')
qty = tonumber(qty)
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('INCRBY', KEYS[1], qty)
local left = redis.call('HINCRBY', KEYS[2], user, -qty)
if left <= 0 then redis.call('HDEL', KEYS[2], user) end
return qty
"""

# Replaces a sale's counters with the database's view (DB wins), atomically. In mode
# "missing" it does nothing when the stock key exists, so API replicas that all find a sale
# unloaded at once (say after a Redis restart) load it once and do not wipe each other's
# fresh reservations.
# KEYS: stock, per-user totals, request ids.
# ARGV: mode ("force" | "missing"), stock, n_users, then user/qty pairs, then request/entry
# pairs. Returns 1 when loaded, 0 when left alone.
RELOAD = """
if ARGV[1] == 'missing' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], ARGV[2])
local n_users = tonumber(ARGV[3])
local i = 4
for _ = 1, n_users do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
"""


class ReserveStatus(IntEnum):
    NOT_OPEN = -7  # before the start: only members, in their early window
    REVOKED = -6
    RATE_LIMITED = -4
    NOT_LOADED = -3
    USER_LIMIT = -2
    SOLD_OUT = -1
    CHECKED = 0  # "limits" mode: the checks before the sale passed
    RESERVED = 1
    DUPLICATE = 2


@dataclass(frozen=True)
class ReserveResult:
    """The script's answer; for RATE_LIMITED, `remaining` is the window (1 user, 2 IP) and
    `user_total` the microseconds until it admits again. `prior` is a replayed request's entry."""

    status: ReserveStatus
    remaining: int
    user_total: int
    prior: Held | None = None


def keys(sale_id: str, prefix: str = "tuanbox") -> list[str]:
    tag = f"{{fs:{sale_id}}}"
    return [
        f"{prefix}:flash:{tag}:stock",
        f"{prefix}:flash:{tag}:users",
        f"{prefix}:flash:{tag}:reqs",
    ]


def stream_key(sale_id: str, prefix: str = "tuanbox") -> str:
    """The sale's queue of winners' orders (stream order writes), in the sale's slot."""
    return f"{prefix}:flash:{{fs:{sale_id}}}:orders"


def parse_reserve(raw: list[int | bytes]) -> ReserveResult:
    prior = raw[3] if len(raw) > 3 else None
    return ReserveResult(
        ReserveStatus(int(raw[0])),
        int(raw[1]),
        int(raw[2]),
        Held.decode(prior.decode() if isinstance(prior, bytes) else str(prior))
        if prior is not None
        else None,
    )


@dataclass(frozen=True)
class Held:
    """One request id's reservation as Redis holds it."""

    user_id: str
    qty: int
    at: int  # Redis server time, seconds
    # Known at admission when the order is written from the stream (replays answer with them).
    reservation_id: str | None = None
    order_id: str | None = None

    def encode(self) -> str:
        base = f"{self.user_id}:{self.qty}:{self.at}"
        if self.reservation_id is None or self.order_id is None:
            return base
        return f"{base}:{self.reservation_id}:{self.order_id}"

    @classmethod
    def decode(cls, raw: str) -> Held:
        parts = raw.split(":")
        if len(parts) == 5:
            return cls(parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4])
        user, qty, at = raw.rsplit(":", 2)
        return cls(user, int(qty), int(at))
