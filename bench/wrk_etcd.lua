-- wrk script for etcd v3's JSON gateway (etcd 3.4): POST /v3/kv/put or
-- /v3/kv/range with base64 keys and values, the same 16-byte keys
-- ("k" + 15 digits) and 100-byte values as wrk_put.lua / wrk_get.lua.
-- ETCD_OP=put|range (default put); CAIRN_KEYSPACE (default 100000).
local op = os.getenv("ETCD_OP") or "put"
local keyspace = tonumber(os.getenv("CAIRN_KEYSPACE") or "100000")
local value_size = tonumber(os.getenv("CAIRN_VALUE_SIZE") or "100")
local threads = {}

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = alphabet:sub(c1 + 1, c1 + 1) .. alphabet:sub(c2 + 1, c2 + 1) ..
      (b and alphabet:sub(c3 + 1, c3 + 1) or "=") .. (c and alphabet:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local value_chars = {}
for i = 0, value_size - 1 do value_chars[#value_chars + 1] = string.char(97 + i % 26) end
local value64 = b64(table.concat(value_chars))
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + thread_id)
end

function request()
  local key64 = b64(string.format("k%015d", math.random(0, keyspace - 1)))
  if op == "range" then
    return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. key64 .. '"}')
  end
  return wrk.format("POST", "/v3/kv/put", headers,
    '{"key":"' .. key64 .. '","value":"' .. value64 .. '"}')
end

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_report.lua")
