-- wrk script: each shopper joins its group once. BENCH_JOINS names a file of
-- "<token> <group id> <key>" lines; thread t sends lines t, t+T, t+2T, ... (T = BENCH_THREADS)
-- and stops after as many answers. Requests a connection sends after its thread's last line
-- (while the last answers are still on their way) repeat that thread's previous join with
-- its Idempotency-Key: a client's retry, which takes no second seat.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local lines = {}
for line in io.lines(os.getenv("BENCH_JOINS")) do lines[#lines + 1] = line end
local nthreads = tonumber(os.getenv("BENCH_THREADS"))
local mine = {}
local quota = 0
local sent = 0
local last = nil

function init(args)
  for i = (id or 0) + 1, #lines, nthreads do mine[#mine + 1] = lines[i] end
  quota = #mine
end

local function join(line)
  local token, group, key = string.match(line, "^(%S+) (%S+) (%S+)$")
  return wrk.format("POST", "/api/v1/groups/" .. group .. "/join", {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
    ["Content-Type"] = "application/json",
  }, '{"qty": 1}')
end

function request()
  started()
  if sent < quota then
    sent = sent + 1
    last = join(mine[sent])
  else
    extra = (extra or 0) + 1
  end
  return last
end

function response(status, headers, body)
  tally(status, body)
  if responses >= quota then wrk.thread:stop() end
end
