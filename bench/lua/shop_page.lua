-- wrk script: GET one shopper page (BENCH_PATH, default "/") as a Chinese phone browser would,
-- counted like the other scripts.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local req = wrk.format("GET", os.getenv("BENCH_PATH") or "/", {
  ["Accept-Language"] = "zh-CN,zh;q=0.9",
  ["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) bench",
})

function request()
  started()
  return req
end

function response(status, headers, body)
  tally(status, body)
end
