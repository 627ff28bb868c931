-- wrk script: GET /v1/key/<key> over the keys wrk_put.lua writes.
local keyspace = tonumber(os.getenv("CAIRN_KEYSPACE") or "100000")
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
function init(args)
  -- thread_id is a per-thread global set in setup()
  math.randomseed(os.time() + thread_id)
end
function request()
  return wrk.format("GET", string.format("/v1/key/k%015d", math.random(0, keyspace - 1)))
end

-- one JSON line at the end for bench/suite.py
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_report.lua")
