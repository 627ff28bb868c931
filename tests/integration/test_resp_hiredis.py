"""hiredis (the C client most Redis libraries build on) against cairn: a
small C program linked with the system's libhiredis runs commands with
binary arguments, a 1000-deep pipeline, errors, nils and arrays. Skipped
when libhiredis-dev or a C compiler is missing."""
import shutil
import subprocess
from pathlib import Path

import pytest

from resp_helpers import anynode, client  # noqa: F401

PROGRAM = r"""
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL line %d: ", __LINE__); \
    printf(__VA_ARGS__); printf("\n"); return 1; } } while (0)

int main(int argc, char **argv)
{
    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    CHECK(c && !c->err, "connect: %s", c ? c->errstr : "oom");
    redisReply *r = redisCommand(c, "SET %b %b", "bin\0key", (size_t)7, "v\0al\r\n", (size_t)6);
    CHECK(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "SET");
    freeReplyObject(r);
    r = redisCommand(c, "GET %b", "bin\0key", (size_t)7);
    CHECK(r && r->type == REDIS_REPLY_STRING && r->len == 6 && memcmp(r->str, "v\0al\r\n", 6) == 0,
          "GET");
    freeReplyObject(r);
    r = redisCommand(c, "GET nokey");
    CHECK(r && r->type == REDIS_REPLY_NIL, "nil");
    freeReplyObject(r);
    r = redisCommand(c, "SET onlykey");
    CHECK(r && r->type == REDIS_REPLY_ERROR &&
          strcmp(r->str, "ERR wrong number of arguments for 'set' command") == 0, "error: %s",
          r ? r->str : "");
    freeReplyObject(r);
    for (int i = 0; i < 1000; i++) redisAppendCommand(c, i % 2 ? "INCR ctr" : "GET ctr");
    long long want = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(redisGetReply(c, (void **)&r) == REDIS_OK, "pipeline %d", i);
        if (i % 2) {
            CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == ++want, "INCR %d", i);
        } else if (want == 0) {
            CHECK(r->type == REDIS_REPLY_NIL, "first GET");
        } else {
            CHECK(r->type == REDIS_REPLY_STRING && atoll(r->str) == want, "GET %d", i);
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "MGET ctr nokey");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
          r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_NIL,
          "MGET");
    freeReplyObject(r);
    r = redisCommand(c, "SCAN 0 COUNT 100");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
          r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements == 2, "SCAN");
    freeReplyObject(r);
    r = redisCommand(c, "INFO keyspace");
    CHECK(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "db0:keys=2,"), "INFO");
    freeReplyObject(r);
    redisFree(c);
    printf("ok\n");
    return 0;
}
"""


@pytest.fixture(scope="module")
def hiredis_program(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc or not Path("/usr/include/hiredis/hiredis.h").exists():
        pytest.skip("libhiredis-dev or a C compiler is not installed")
    d = tmp_path_factory.mktemp("hiredis")
    src = d / "prog.c"
    src.write_text(PROGRAM)
    exe = d / "prog"
    p = subprocess.run([cc, "-O1", "-o", str(exe), str(src), "-lhiredis"], capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return exe


def test_hiredis_client(anynode, hiredis_program):
    p = subprocess.run([str(hiredis_program), str(anynode.resp_port)], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout == b"ok\n", p.stdout + p.stderr
    assert client(anynode).get("ctr") == b"500"
