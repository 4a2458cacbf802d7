-- wrk script for the baseline: GET /healthz, counted like the other scripts.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local req = wrk.format("GET", "/healthz")

function request()
  started()
  return req
end

function response(status, headers, body)
  tally(status, body)
end
