/* script_cmsgpack: see script_cmsgpack.h. */
#include "api/script_cmsgpack.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "obs/log.h"

/* cairn's layer over lua-messagepack (its module table is the chunk's
 * argument): lua_cmsgpack's encoding choices and its four functions, each
 * answering true and its values, or false and lua_cmsgpack's error (which
 * the C function around it raises, so that the error names the script's
 * line, and a tail call to it keeps the script's frame, as lua_cmsgpack's
 * C functions do). */
static const char sl_cmsgpack_layer[] =
    "local mp = ...\n"
    "local packers = mp.packers\n"
    "local floor, concat, char, format = math.floor, table.concat, string.char, string.format\n"
    "local select, type, pcall, error, unpack, tostring = select, type, pcall, error, unpack, "
    "tostring\n"
    "local MISSING, BADFMT = 'Missing bytes in input.', 'Bad data format in input.'\n"
    "mp.set_string('string')\n"      /* fixstr, str8 (0xd9), str16, str32 */
    "mp.set_array('without_hole')\n" /* keys exactly 1..n: an array */
    "mp.set_integer('unsigned')\n"   /* positives as uint*, negatives as int* */
    "local function as_nil(buffer) buffer[#buffer + 1] = char(0xC0) end\n"
    "packers['function'] = as_nil\n"
    "packers['userdata'] = as_nil\n"
    "packers['thread'] = as_nil\n"
    /* 64-bit integers whole (lua-messagepack keeps 53 bits of them) */
    "local function int64(buffer, n)\n"
    "  local hi = floor(n / 4294967296)\n"
    "  local lo = n - hi * 4294967296\n"
    "  local head = 0xCF\n"
    "  if n < 0 then head = 0xD3; hi = hi + 4294967296 end\n"
    "  buffer[#buffer + 1] = char(head, floor(hi / 16777216) % 256, floor(hi / 65536) % 256,\n"
    "    floor(hi / 256) % 256, hi % 256, floor(lo / 16777216) % 256, floor(lo / 65536) % 256,\n"
    "    floor(lo / 256) % 256, lo % 256)\n"
    "end\n"
    /* an int64 as an integer; else float32 when that is exact, else float64 */
    "packers['number'] = function(buffer, n)\n"
    "  if n == floor(n) and n >= -9223372036854775808 and n < 9223372036854775808 then\n"
    "    if n >= -2147483648 and n <= 4294967295 then packers['unsigned'](buffer, n)\n"
    "    else int64(buffer, n) end\n"
    "    return\n"
    "  end\n"
    "  local f = {}\n"
    "  packers['float'](f, n)\n"
    "  f = concat(f)\n"
    "  local ok, back = pcall(mp.unpack, f)\n"
    "  if ok and back == n then buffer[#buffer + 1] = f else packers['double'](buffer, n) end\n"
    "end\n"
    /* tables nested past 16 levels are nil */
    "local pack_table, depth = packers['table'], 0\n"
    "packers['table'] = function(buffer, t)\n"
    "  if depth >= 16 then buffer[#buffer + 1] = char(0xC0) return end\n"
    "  depth = depth + 1\n"
    "  pack_table(buffer, t)\n"
    "  depth = depth - 1\n"
    "end\n"
    "mp.build_ext = function() error(BADFMT, 0) end\n" /* lua_cmsgpack has no ext types */
    "local function pack(...)\n"
    "  local n = select('#', ...)\n"
    "  if n == 0 then return false, \"bad argument #0 to 'pack' (MessagePack pack needs input.)\" "
    "end\n"
    "  local buffer = {}\n"
    "  for i = 1, n do\n"
    "    local v = select(i, ...)\n"
    "    depth = 0\n"
    "    packers[type(v)](buffer, v)\n"
    "  end\n"
    "  return true, concat(buffer)\n"
    "end\n"
    /* the values from 0-based offset on, at most limit: count, end, values */
    "local function decode(s, offset, limit)\n"
    "  local c = {s = s, i = offset + 1, j = #s, underflow = function() error(MISSING, 0) end}\n"
    "  local out, n = {}, 0\n"
    "  while c.i <= c.j and n < limit do\n"
    "    local ok, v = pcall(mp.unpack_cursor, c)\n"
    "    if not ok then return nil, v == MISSING and MISSING or BADFMT end\n"
    "    n = n + 1\n"
    "    out[n] = v\n"
    "  end\n"
    "  return n, c.i - 1, out\n"
    "end\n"
    "local function input(name, ...)\n"
    "  local s = ...\n"
    "  local t = type(s)\n"
    "  if t == 'number' then return tostring(s) end\n"
    "  if t ~= 'string' then\n"
    "    local got = select('#', ...) == 0 and 'no value' or t\n"
    "    return nil, format(\"bad argument #1 to '%s' (string expected, got %s)\", name, got)\n"
    "  end\n"
    "  return s\n"
    "end\n"
    "local function unpack_all(...)\n"
    "  local s, why = input('unpack', ...)\n"
    "  if not s then return false, why end\n"
    "  local n, e, out = decode(s, 0, math.huge)\n"
    "  if not n then return false, e end\n"
    "  return true, unpack(out, 1, n)\n"
    "end\n"
    "local function limited(name, s, limit, offset)\n"
    "  local why\n"
    "  s, why = input(name, s)\n"
    "  if not s then return nil, why end\n"
    "  if offset < 0 or limit < 0 then\n" /* (lua_cmsgpack prints the length as the limit) */
    "    return nil, format('Invalid request to unpack with offset of %d and limit of %d.',\n"
    "                       offset, #s)\n"
    "  end\n"
    "  if offset > #s then\n"
    "    return nil, format('Start offset %d greater than input length %d.', offset, #s)\n"
    "  end\n"
    "  local all = limit == 0 and offset == 0\n" /* lua_cmsgpack's rule: every value */
    "  local n, e, out = decode(s, offset, all and math.huge or limit)\n"
    "  if not n then return nil, e end\n"
    "  if e == #s then e = -1 end\n"
    "  return true, e, n, out, all\n"
    "end\n"
    "local function unpack_one(s, offset)\n"
    "  local ok, e, n, out = limited('unpack_one', s, 1, tonumber(offset) or 0)\n"
    "  if not ok then return false, e end\n"
    "  return true, e, unpack(out, 1, n)\n"
    "end\n"
    "local function unpack_limit(s, limit, offset)\n"
    "  local ok, e, n, out, all = limited('unpack_limit', s, tonumber(limit) or 0,\n"
    "                                     tonumber(offset) or 0)\n"
    "  if not ok then return false, e end\n"
    "  if all then return true, unpack(out, 1, n) end\n"
    "  return true, e, unpack(out, 1, n)\n"
    "end\n"
    "return {pack = pack, unpack = unpack_all, unpack_one = unpack_one,\n"
    "        unpack_limit = unpack_limit, _NAME = 'cmsgpack',\n"
    "        _VERSION = 'lua-cmsgpack 0.4.0',\n"
    "        _COPYRIGHT = 'lua-MessagePack, Copyright (c) 2012-2019 Francois Perrad',\n"
    "        _DESCRIPTION = 'MessagePack for Lua (lua-messagepack, as lua-cmsgpack encodes)'}\n";

/* cmsgpack.<fn>: the layer's function (upvalue 1) on the arguments. */
static int sl_cmsgpack_call(lua_State *L)
{
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    if (!lua_toboolean(L, 1)) return luaL_error(L, "%s", lua_tostring(L, 2));
    return lua_gettop(L) - 1;
}

/* require, while the module loads: string, math and table only (it
 * also asks for jit, in a pcall, to learn it runs on plain Lua). */
static int sl_cmsgpack_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (strcmp(name, "string") != 0 && strcmp(name, "math") != 0 && strcmp(name, "table") != 0)
        return luaL_error(L, "module '%s' not found", name);
    lua_getglobal(L, name);
    return 1;
}

bool script_cmsgpack_open(lua_State *L)
{
    /* a missing lua-messagepack is logged once per process: every
     * FUNCTION LOAD makes a scratch interpreter */
    static bool warned;
    int top = lua_gettop(L);
    lua_pushcfunction(L, sl_cmsgpack_require);
    lua_setglobal(L, "require");
    bool ok = false;
    if (luaL_loadfile(L, SCRIPT_CMSGPACK_PATH) != 0) {
        if (!warned)
            LOG_WARN("Lua library not loaded: scripts lack cmsgpack (install lua-messagepack)",
                     LF_S("file", SCRIPT_CMSGPACK_PATH), LF_S("error", lua_tostring(L, -1)));
        warned = true;
    } else if (lua_pcall(L, 0, 1, 0) != 0 || !lua_istable(L, -1)) {
        if (!warned)
            LOG_WARN("lua-messagepack did not load: scripts lack cmsgpack",
                     LF_S("error", lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a module"));
        warned = true;
    } else if (luaL_loadbuffer(L, sl_cmsgpack_layer, sizeof(sl_cmsgpack_layer) - 1, "=cmsgpack") !=
               0) {
        LOG_ERROR("the cmsgpack layer does not compile", LF_S("error", lua_tostring(L, -1)));
    } else {
        lua_insert(L, -2); /* the layer, then the module as its argument */
        if (lua_pcall(L, 1, 1, 0) != 0) {
            LOG_ERROR("the cmsgpack layer failed", LF_S("error", lua_tostring(L, -1)));
        } else {
            /* the layer's functions behind C functions; its fields as they are */
            int layer = lua_gettop(L);
            lua_newtable(L);
            lua_pushnil(L);
            while (lua_next(L, layer)) {
                if (lua_isfunction(L, -1)) lua_pushcclosure(L, sl_cmsgpack_call, 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_settable(L, layer + 1);
            }
            lua_setglobal(L, "cmsgpack");
            ok = true;
        }
    }
    lua_settop(L, top);
    lua_pushnil(L);
    lua_setglobal(L, "require");
    return ok;
}
