-- wrk script for a static file (nginx, the HTTP ceiling): GET of the URL's
-- path, with the shared JSON report at the end.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_report.lua")
