-- wrk script: PUT /v1/key/<prefix><n> with a 100-byte value.
-- Keys are 16 bytes ("k" + 15 digits). With CAIRN_SEQUENTIAL=1 every
-- request writes a new key (to load N distinct keys); otherwise keys are
-- random over CAIRN_KEYSPACE (default 100000).
local counter = 0
local threads = {}
local value = string.rep("v", 100)
local keyspace = tonumber(os.getenv("CAIRN_KEYSPACE") or "100000")
local sequential = os.getenv("CAIRN_SEQUENTIAL") == "1"
-- wrk -t value; sequential keys are counter * threads + thread_id (dense)
local nthreads = tonumber(os.getenv("CAIRN_THREADS") or "2")

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- thread_id is a per-thread global set in setup()
  math.randomseed(os.time() + thread_id)
end

function request()
  local n
  if sequential then
    n = counter * nthreads + thread_id
    counter = counter + 1
  else
    n = math.random(0, keyspace - 1)
  end
  return wrk.format("PUT", string.format("/v1/key/k%015d", n), nil, value)
end

-- one JSON line at the end for bench/suite.py
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_report.lua")
