"""redis-py (Debian's python3-redis) on every data type, against cairn and
against Debian's redis-server side by side: the same calls through the
library's own API must give the same Python values (redis-py parses each
reply by command, so a reply of the wrong shape shows here). Debian 12's
redis-py (4.3) speaks RESP2 only; RESP3 replies are compared byte for byte
by each type's own differential test."""
import redis

from resp_helpers import anynode  # noqa: F401
from test_resp_hashes import redis_server  # noqa: F401


def calls(r):
    """Each call's result, in order; an exception is a result too."""
    out = []

    def do(fn, *a, **kw):
        try:
            v = fn(*a, **kw)
        except redis.ResponseError as e:
            v = ("error", str(e))
        if isinstance(v, (set, frozenset)):
            v = sorted(v)
        out.append(v)

    do(r.set, "s", "v"), do(r.append, "s", "x"), do(r.getrange, "s", 0, 0), do(r.incrbyfloat, "n", 1.5)
    do(r.setbit, "b", 7, 1), do(r.getbit, "b", 7), do(r.bitcount, "b"), do(r.bitpos, "b", 1)
    do(r.bitop, "NOT", "nb", "b"), do(r.get, "nb")
    bf = r.bitfield("bf")
    do(bf.set("u8", 0, 200).incrby("u8", 0, 100).get("i8", 0).execute)
    do(r.hset, "h", mapping={"a": "1", "b": "2"}), do(r.hgetall, "h"), do(r.hincrbyfloat, "h", "a", 0.5)
    do(r.hmget, "h", ["a", "zz"]), do(r.hkeys, "h"), do(r.hstrlen, "h", "b")
    do(r.rpush, "l", "a", "b", "c", "d"), do(r.lpop, "l", 2), do(r.lrange, "l", 0, -1)
    do(r.lpos, "l", "d"), do(r.lmpop, 1, "l", direction="RIGHT", count=5), do(r.blpop, ["l"], timeout=0.05)
    do(r.sadd, "st", "1", "2", "x"), do(r.smembers, "st"), do(r.sismember, "st", "x")
    do(r.smismember, "st", ["1", "9"]), do(r.sintercard, 1, ["st"]), do(r.sinter, ["st", "nokey"])
    do(r.zadd, "z", {"a": 1.5, "b": 2, "c": 3}), do(r.zrange, "z", 0, -1, withscores=True)
    do(r.zrangebyscore, "z", "(1.5", "+inf", withscores=True), do(r.zscore, "z", "a")
    do(r.zmscore, "z", ["a", "nope"]), do(r.zincrby, "z", 2, "a"), do(r.zrank, "z", "a")
    do(r.zpopmin, "z"), do(r.zpopmax, "z", 2), do(r.zadd, "z", {"p": 1, "q": 2})
    do(r.zrangestore, "z2", "z", 0, -1), do(r.zmpop, 1, ["z"], min=True)
    do(r.bzpopmax, ["z"], timeout=0.05), do(r.bzpopmin, ["nokey"], timeout=0.05)
    do(r.zadd, "z3", {"a": 1, "b": 2}), do(r.zunion, ["z3", "z2"], withscores=True)
    do(r.zinterstore, "z4", {"z3": 2, "z2": 1}), do(r.zrandmember, "nokey")
    do(r.pfadd, "hll", "a", "b", "c"), do(r.pfcount, "hll", "nokey"), do(r.pfmerge, "hll2", "hll")
    do(r.geoadd, "geo", (13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"))
    do(r.geopos, "geo", "Palermo", "nope"), do(r.geodist, "geo", "Palermo", "Catania", unit="km")
    do(r.geohash, "geo", "Palermo")
    do(r.geosearch, "geo", longitude=15, latitude=37, radius=200, unit="km", sort="ASC",
       withdist=True, withcoord=True, withhash=True)
    do(r.georadius, "geo", 15, 37, 200, unit="km", withdist=True, sort="ASC")
    do(r.geosearchstore, "geo2", "geo", member="Palermo", radius=300, unit="km", storedist=True)
    do(r.rpush, "srt", "3", "1", "2"), do(r.sort, "srt", desc=True), do(r.sort, "srt", store="srt2")
    do(r.sort_ro, "srt", alpha=True), do(r.copy, "srt", "srt3"), do(r.lrange, "srt3", 0, -1)
    do(r.type, "geo"), do(r.object, "encoding", "z3"), do(r.lmove, "nokey", "s")
    do(r.zadd, "s", {"x": 1}), do(r.hget, "z", "a"), do(r.lpush, "h", "x")
    return out


def test_redis_py_sees_what_it_sees_on_redis(anynode, redis_server):  # noqa: F811
    mine = calls(redis.Redis(host="127.0.0.1", port=anynode.resp_port))
    theirs = calls(redis.Redis(host="127.0.0.1", port=redis_server))
    assert len(mine) == len(theirs) > 60
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert a == b, (i, a, b)
