"""Redis protocol: geo commands on sorted sets (issue 12): GEOADD GEOPOS
GEODIST GEOHASH GEOSEARCH GEOSEARCHSTORE GEORADIUS GEORADIUSBYMEMBER and the
_RO forms, checked against Debian's redis-server (the harness of
test_resp_hashes.py) in RESP2 and RESP3: scores, decoded positions,
distances in every unit, geohash strings, searches by radius and box
sorted and counted, the STORE forms, and the errors in Redis' words.

Redis promises no order for a search without ASC/DESC or COUNT (it answers
in the order it walks its cells): those replies are compared as sets."""
import random

import pytest

from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

SICILY = ("GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")

BASIC = [
    SICILY, ("ZRANGE", "Sicily", "0", "-1", "WITHSCORES"),
    ("GEOADD", "Sicily", "NX", "13.361389", "38.115556", "Palermo", "12.758489", "38.788135", "edge1"),
    ("GEOADD", "Sicily", "XX", "CH", "13.5", "38.1", "Palermo", "1", "1", "nothere"),
    ("GEOADD", "Sicily", "CH", "13.361389", "38.115556", "Palermo"),
    ("GEOADD", "Sicily", "NX", "XX", "1", "1", "x"), ("GEOADD", "Sicily", "1", "1"),
    ("GEOADD", "Sicily", "200", "10", "bad"), ("GEOADD", "Sicily", "10", "86", "bad"),
    ("GEOADD", "Sicily", "x", "10", "bad"), ("GEOADD", "Sicily", "10", "nan", "bad"),
    ("GEOPOS", "Sicily", "Palermo", "Catania", "NonExisting"), ("GEOPOS", "nokey", "a"),
    ("GEOPOS", "Sicily"),
    ("GEODIST", "Sicily", "Palermo", "Catania"), ("GEODIST", "Sicily", "Palermo", "Catania", "km"),
    ("GEODIST", "Sicily", "Palermo", "Catania", "MI"), ("GEODIST", "Sicily", "Palermo", "Catania", "ft"),
    ("GEODIST", "Sicily", "Palermo", "Catania", "yd"), ("GEODIST", "Sicily", "Palermo", "Foo"),
    ("GEODIST", "nokey", "a", "b"), ("GEODIST", "Sicily", "Palermo", "Palermo"),
    ("GEODIST", "Sicily", "a", "b", "km", "x"),
    ("GEOHASH", "Sicily", "Palermo", "Catania", "nothere"), ("GEOHASH", "nokey", "a"),
    ("GEOADD", "poles", "0", "85.05112878", "north", "-180", "-85.05112878", "south", "180", "0", "east",
     "-0", "0", "origin", "-179.9999", "1", "wrap"),
    ("GEOPOS", "poles", "north", "south", "east", "origin", "wrap"),
    ("GEOHASH", "poles", "north", "south", "east", "origin", "wrap"),
    ("GEODIST", "poles", "north", "south"), ("GEODIST", "poles", "east", "wrap", "km"),
    # sorted or counted searches: the order is Redis'
    ("GEOADD", "Sicily", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "DESC", "WITHDIST",
     "WITHCOORD", "WITHHASH"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "WITHCOORD",
     "WITHDIST"),
    ("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "COUNT", "2",
     "WITHDIST"),
    ("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "100", "mi", "DESC", "COUNT", "1"),
    ("GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "ASC"),
    ("GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD", "WITHHASH", "COUNT", "3", "DESC"),
    ("GEORADIUS_RO", "Sicily", "15", "37", "100000", "m", "WITHDIST", "ASC"),
    ("GEORADIUSBYMEMBER", "Sicily", "Palermo", "300", "km", "ASC", "WITHDIST"),
    ("GEORADIUSBYMEMBER_RO", "Sicily", "Catania", "1000", "ft", "ASC", "WITHDIST"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m", "ASC"),
    ("GEOSEARCH", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),
    ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "m"),
    ("GEORADIUSBYMEMBER", "nokey", "x", "bad", "m"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "2", "ANY"),
    # STORE forms
    ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC",
     "COUNT", "3"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("GEOSEARCHSTORE", "dst", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "STOREDIST"),
    ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"), ("EXISTS", "dst"),
    ("GEOSEARCHSTORE", "dst", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "st"), ("ZRANGE", "st", "0", "-1", "WITHSCORES"),
    ("GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STOREDIST", "st2", "COUNT", "1"),
    ("ZRANGE", "st2", "0", "-1", "WITHSCORES"),
    ("GEOSEARCHSTORE", "Sicily", "Sicily", "FROMMEMBER", "Catania", "BYRADIUS", "50", "km"),
    ("ZRANGE", "Sicily", "0", "-1"),
    ("GEOSEARCHSTORE", "dst", "Sicily", "FROMMEMBER", "nothere", "BYRADIUS", "50", "km"),
    # errors
    ("GEOSEARCH", "Sicily", "BYRADIUS", "1", "km"), ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "FROMMEMBER", "a", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "-1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "x", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "parsec"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "x", "1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "1", "x", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "-1", "1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT", "0"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "ANY"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "STORE", "x"),
    ("GEOSEARCH", "Sicily", "FROMMEMBER", "nothere", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "100", "BYRADIUS", "1", "km"),
    ("GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "WITHDIST"),
    ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "x", "WITHDIST"),
    ("GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "x"),
    ("GEORADIUSBYMEMBER", "Sicily", "nothere", "1", "km"),
    ("SET", "str", "v"), ("GEOADD", "str", "1", "1", "a"), ("GEOPOS", "str", "a"),
    ("GEODIST", "str", "a", "b"), ("GEOHASH", "str", "a"),
    ("GEOSEARCH", "str", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
    ("COMMAND", "GETKEYS", "GEOSEARCHSTORE", "d", "s", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_geo_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)


def _sorted_reply(port, *cmd):
    with RawResp(port) as c:
        r = c.cmd(*cmd)
    return sorted(r) if isinstance(r, list) else r


def test_random_searches_find_what_redis_finds(anynode, redis_server):  # noqa: F811
    """Seeded: 3,000 points clustered and spread (near the poles and the
    antimeridian too), 300 searches by radius and box from random centres
    and members: the same members with the same distances and hashes
    (unordered searches compared as sets, the ordered ones as they are)."""
    rnd = random.Random(21)
    args = []
    for i in range(3000):
        if i % 3 == 0:
            lon, lat = rnd.uniform(-180, 180), rnd.uniform(-85, 85)
        elif i % 3 == 1:
            lon, lat = rnd.gauss(12.5, 0.5), rnd.gauss(41.9, 0.5)
        else:
            lon, lat = rnd.choice([179.9, -179.9]) + rnd.uniform(-0.05, 0.05), rnd.uniform(80, 85)
        lon = max(-180, min(180, lon))
        args += [f"{lon:.6f}", f"{lat:.6f}", f"p{i}"]
    for s in (anynode.resp_port, redis_server):
        with RawResp(s) as c:
            assert c.cmd("GEOADD", "pts", *args) == 3000
    script = []
    found = 0
    for k in range(300):
        unit = rnd.choice(["m", "km", "mi", "ft"])
        scale = {"m": 1000, "km": 1, "mi": 1, "ft": 3000}[unit]
        shape = (["BYRADIUS", f"{rnd.uniform(0, 300) * scale:.3f}", unit] if k % 2 else
                 ["BYBOX", f"{rnd.uniform(0, 500) * scale:.3f}", f"{rnd.uniform(0, 500) * scale:.3f}", unit])
        if k % 3 == 0:
            origin = ["FROMMEMBER", f"p{rnd.randrange(3000)}"]
        elif k % 3 == 1:
            origin = ["FROMLONLAT", f"{rnd.gauss(12.5, 1):.5f}", f"{rnd.gauss(41.9, 1):.5f}"]
        else:
            origin = ["FROMLONLAT", f"{rnd.choice([179.95, -179.95]):.5f}", f"{rnd.uniform(80, 85):.5f}"]
        cmd = ("GEOSEARCH", "pts", *origin, *shape, "WITHDIST", "WITHHASH")
        mine, theirs = _sorted_reply(anynode.resp_port, *cmd), _sorted_reply(redis_server, *cmd)
        assert mine == theirs, (cmd, len(mine), len(theirs))
        found += len(mine)
        script.append((*cmd, "ASC", "COUNT", str(rnd.randint(1, 20))))
    assert found > 3000, found  # the searches found something to compare
    assert_same(anynode.resp_port, redis_server, script, 2)


def test_stored_search_is_the_same_on_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:
        assert c.cmd(*SICILY) == 2
        assert c.cmd("GEOSEARCHSTORE", "near", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "300",
                     "km", "STOREDIST") == 2
    for x in nodes:
        with RawResp(x.resp_port) as c:
            assert c.cmd("ZRANGE", "near", "0", "-1") == [b"Palermo", b"Catania"]
            assert c.cmd("GEODIST", "Sicily", "Palermo", "Catania", "km") == b"166.2742"
