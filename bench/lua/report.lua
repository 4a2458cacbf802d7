-- Shared wrk hooks: per-thread counts of answers (status, and the problem's `code` when there
-- is one), a monotonic clock, and a done() that prints one JSON line for the Python bench.
-- Loaded with dofile() by the request scripts beside it.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

counts = {}
responses = 0
extra = 0 -- requests a script sent beyond its quota (group_join.lua)
first_us = 0
last_us = 0

-- Called by each script's response(): tally one answer.
function tally(status, body)
  local key = tostring(status)
  if status >= 400 and body ~= nil then
    local code = string.match(body, '"code"%s*:%s*"([A-Z_]+)"')
    if code ~= nil then key = key .. ":" .. code end
  end
  counts[key] = (counts[key] or 0) + 1
  responses = responses + 1
  last_us = now_us()
end

function started()
  if first_us == 0 then first_us = now_us() end
end

local function json_counts(merged)
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local merged, total, extras = {}, 0, 0
  local first, last = nil, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do merged[k] = (merged[k] or 0) + v end
    total = total + t:get("responses")
    extras = extras + (t:get("extra") or 0)
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and (first == nil or f < first) then first = f end
    if l > last then last = l end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"duration_us": %d, "requests": %d, "responses": %d, "first_us": %d, ' ..
    '"last_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d}, "extra": %d, "counts": %s}\n',
    summary.duration, summary.requests, total, first or 0, last,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, extras, json_counts(merged)))
end
