/* script_cmsgpack: Redis' `cmsgpack` library for scripts, on Debian's
 * lua-messagepack (a pure Lua MessagePack, /usr/share/lua/5.1).
 *
 * Redis embeds lua_cmsgpack (C); Debian packages no build of it for Lua
 * 5.1, but packages lua-messagepack, whose packers and cursor are open to
 * adjustment. A small Lua layer of cairn's own sets them to encode as
 * lua_cmsgpack encodes (integers of up to 64 bits in the smallest type,
 * unsigned when positive; other numbers as float32 when that is exact,
 * else float64; str8/16/32; a table whose keys are exactly 1..n as an
 * array, else a map; tables nested past 16 levels, functions and
 * userdata as nil) and offers its functions: cmsgpack.pack(v, ...),
 * cmsgpack.unpack(s), cmsgpack.unpack_one(s [, offset]) and
 * cmsgpack.unpack_limit(s, limit [, offset]), with its error messages
 * ("Missing bytes in input.", "Bad data format in input."). Checked byte
 * for byte against redis-server 7.0 (tests/integration/test_resp_scripts.py). */
#ifndef CAIRN_API_SCRIPT_CMSGPACK_H
#define CAIRN_API_SCRIPT_CMSGPACK_H

#include <stdbool.h>

struct lua_State;

#define SCRIPT_CMSGPACK_PATH "/usr/share/lua/5.1/MessagePack.lua"

/* Set the global cmsgpack in L (before the sandbox is closed: the module
 * is loaded with a require that only knows string, math and table).
 * False (and a warning logged) when lua-messagepack is not installed. */
bool script_cmsgpack_open(struct lua_State *L);

#endif
