"""hiredis (the C client most Redis libraries build on) against cairn: a
small C program linked with the system's libhiredis runs commands with
binary arguments, a 1000-deep pipeline, errors, nils and arrays, and every
data type's replies (nested arrays with nils: LMPOP, ZMPOP, GEOPOS,
BITFIELD; a binary DUMP payload RESTOREd; a blocking pop that times out;
WRONGTYPE). Debian 12's hiredis (0.14) speaks RESP2 only. Skipped when
libhiredis-dev or a C compiler is missing."""
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

    /* every type: integers, arrays of bulk strings, nested arrays with nils */
#define EXPECT(type_, cond, ...) do { r = redisCommand(c, __VA_ARGS__); \
    CHECK(r && r->type == (type_) && (cond), "%s: type %d %s", #__VA_ARGS__, r ? r->type : -1, \
          r && r->type == REDIS_REPLY_ERROR ? r->str : ""); freeReplyObject(r); } while (0)
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 2, "HSET h f1 %b f2 v2", "v\0\n1", (size_t)4);
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 4 && r->element[1]->len == 4 &&
           memcmp(r->element[1]->str, "v\0\n1", 4) == 0, "HGETALL h");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 4, "HRANDFIELD h -2 WITHVALUES");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 3, "RPUSH l a b c");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && strcmp(r->element[0]->str, "l") == 0 &&
           r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements == 2,
           "LMPOP 2 nol l LEFT COUNT 2");
    EXPECT(REDIS_REPLY_NIL, 1, "LMPOP 1 nol LEFT");
    EXPECT(REDIS_REPLY_NIL, 1, "BLPOP nol 0.05");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && strcmp(r->element[1]->str, "c") == 0,
           "BLPOP l 1");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 3, "SADD s 1 2 3");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 3, "SMEMBERS s");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 3 && r->element[2]->type == REDIS_REPLY_INTEGER &&
           r->element[2]->integer == 0, "SMISMEMBER s 1 2 9");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 2, "ZADD z 1.5 a 2 b");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 4 && strcmp(r->element[1]->str, "1.5") == 0,
           "ZRANGE z 0 -1 WITHSCORES");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && r->element[1]->elements == 1 &&
           r->element[1]->element[0]->elements == 2, "ZMPOP 1 z MIN");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 1, "PFADD hll a b c");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 3, "PFCOUNT hll");
    EXPECT(REDIS_REPLY_INTEGER, r->integer == 1, "GEOADD g 13.361389 38.115556 Palermo");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && r->element[0]->type == REDIS_REPLY_ARRAY &&
           r->element[1]->type == REDIS_REPLY_NIL, "GEOPOS g Palermo nowhere");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
           r->element[1]->type == REDIS_REPLY_NIL,
           "BITFIELD bf SET u8 0 255 OVERFLOW FAIL INCRBY u8 0 1");
    EXPECT(REDIS_REPLY_ARRAY, r->elements == 2 && strcmp(r->element[0]->str, "1") == 0,
           "SORT s LIMIT 0 2");
    EXPECT(REDIS_REPLY_ERROR, strncmp(r->str, "WRONGTYPE", 9) == 0, "LPUSH h x");
    r = redisCommand(c, "DUMP h");
    CHECK(r && r->type == REDIS_REPLY_STRING && r->len > 10, "DUMP");
    redisReply *p = redisCommand(c, "RESTORE h2 0 %b", r->str, r->len);
    CHECK(p && p->type == REDIS_REPLY_STATUS && strcmp(p->str, "OK") == 0, "RESTORE: %s",
          p && p->str ? p->str : "");
    freeReplyObject(p);
    freeReplyObject(r);
    EXPECT(REDIS_REPLY_STRING, r->len == 4 && memcmp(r->str, "v\0\n1", 4) == 0, "HGET h2 f1");
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
    assert client(anynode).hget("h2", "f2") == b"v2"
