-- wrk script: POST a reservation as one of the shoppers (tokens rotate), each request with a
-- fresh Idempotency-Key. BENCH_TOKENS names a file of access tokens, one a line;
-- BENCH_PATH is the sale's reservations path; BENCH_RUN makes keys unique per run.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local path = os.getenv("BENCH_PATH")
local run = os.getenv("BENCH_RUN") or "r"
local body = '{"qty": 1}'
local n = 0

function init(args)
  -- Threads start at different shoppers so two threads never send the same token together.
  n = math.floor(#tokens / 2) * (id or 0)
end

function request()
  started()
  n = n + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1],
    ["Idempotency-Key"] = string.format("%s-%d-%d", run, id or 0, n),
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  tally(status, body)
end
