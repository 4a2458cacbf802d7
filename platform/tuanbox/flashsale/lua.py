"""The flash-sale Redis scripts: one atomic reservation step, its compensation and a reload.

Keys share one hash tag (`{fs:<id>}`) so a Redis Cluster keeps a sale's keys on one slot.
Redis only admits or turns away buyers fast; the database remains the record (see services).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# KEYS: stock, per-user totals (hash), request ids → qty (hash)
# ARGV: user id, request id, qty, per-user limit
# Returns {status, remaining, user_total}.
RESERVE = """
local prior = redis.call('HGET', KEYS[3], ARGV[2])
local stock = redis.call('GET', KEYS[1])
if not stock then return {-3, 0, 0} end
stock = tonumber(stock)
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if prior then return {2, stock, used} end
local qty = tonumber(ARGV[3])
if used + qty > tonumber(ARGV[4]) then return {-2, stock, used} end
if stock < qty then return {-1, stock, used} end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
-- user:qty:seconds, so reconciliation can tell an in-flight request from an orphan
local t = redis.call('TIME')[1]
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1] .. ':' .. qty .. ':' .. t)
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
    NOT_LOADED = -3
    USER_LIMIT = -2
    SOLD_OUT = -1
    RESERVED = 1
    DUPLICATE = 2


@dataclass(frozen=True)
class ReserveResult:
    status: ReserveStatus
    remaining: int
    user_total: int


def keys(sale_id: str, prefix: str = "tuanbox") -> list[str]:
    tag = f"{{fs:{sale_id}}}"
    return [
        f"{prefix}:flash:{tag}:stock",
        f"{prefix}:flash:{tag}:users",
        f"{prefix}:flash:{tag}:reqs",
    ]


def parse_reserve(raw: list[int]) -> ReserveResult:
    return ReserveResult(ReserveStatus(int(raw[0])), int(raw[1]), int(raw[2]))


@dataclass(frozen=True)
class Held:
    """One request id's reservation as Redis holds it."""

    user_id: str
    qty: int
    at: int  # Redis server time, seconds

    def encode(self) -> str:
        return f"{self.user_id}:{self.qty}:{self.at}"

    @classmethod
    def decode(cls, raw: str) -> Held:
        user, qty, at = raw.rsplit(":", 2)
        return cls(user, int(qty), int(at))
