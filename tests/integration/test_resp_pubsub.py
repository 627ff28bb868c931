"""Redis protocol: pub/sub (issue 13). SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
PUNSUBSCRIBE, PUBLISH, the shard channels' SSUBSCRIBE, SUNSUBSCRIBE and
SPUBLISH, PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB/HELP,
checked byte for
byte against Debian's redis-server with two connections choreographed the
same way on both, in RESP2 (the subscribed context's rules, PING's
["pong", ...]) and RESP3 (push frames between replies). On a 3-node
cluster a message published through one follower reaches subscribers on
the leader and on the other follower; a subscriber that stops reading is
disconnected at the output limit and counted, and the node goes on."""
import time

import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode, metric_value, metrics  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import redis_server  # noqa: F401


def _choreography(port, proto):
    """Each step: (connection, command or None, values to read); None
    reads what was pushed without sending. Returns the raw bytes read."""
    a, b = RawResp(port), RawResp(port)
    out = []
    try:
        if proto == 3:
            a.cmd("HELLO", "3")
        steps = [
            ("a", ("SUBSCRIBE", "ch1", "ch2"), 2),
            ("a", ("SUBSCRIBE", "ch1"), 1),  # again: the count stays
            ("a", ("PSUBSCRIBE", "c*", "z?"), 2),
            ("a", ("PING",), 1), ("a", ("PING", "hi"), 1),
            ("a", ("GET", "k"), 1),  # RESP2: not in this context; RESP3: a reply
            ("b", ("PUBLISH", "ch1", "hello"), 1), ("a", None, 2),  # channel, then pattern
            ("b", ("PUBLISH", "zz", b"\x00bin\r\n"), 1), ("a", None, 1),
            ("b", ("PUBLISH", "nobody", "x"), 1),
            ("b", ("PUBSUB", "CHANNELS", "ch1"), 1), ("b", ("PUBSUB", "CHANNELS", "nope*"), 1),
            ("b", ("PUBSUB", "NUMSUB", "ch1", "ch2", "nope"), 1), ("b", ("PUBSUB", "NUMSUB"), 1),
            ("b", ("PUBSUB", "NUMPAT"), 1),
            ("a", ("UNSUBSCRIBE", "ch1", "never"), 2),
            ("b", ("PUBLISH", "ch1", "only the pattern"), 1), ("a", None, 1),
            ("a", ("UNSUBSCRIBE",), 1), ("a", ("PUNSUBSCRIBE", "z?"), 1),
            ("a", ("PUNSUBSCRIBE",), 1), ("a", ("UNSUBSCRIBE",), 1), ("a", ("PUNSUBSCRIBE",), 1),
            ("a", ("GET", "k"), 1), ("a", ("PING",), 1),
            ("b", ("PUBLISH", "ch1", "x"), 1),
            # errors
            ("b", ("PUBLISH", "ch1"), 1), ("b", ("SUBSCRIBE",), 1), ("b", ("PSUBSCRIBE",), 1),
            ("b", ("PUBSUB",), 1), ("b", ("PUBSUB", "FOO"), 1),
            ("b", ("PUBSUB", "CHANNELS", "a", "b"), 1), ("b", ("PUBSUB", "NUMPAT", "x"), 1),
            # a publish inside a transaction
            ("a", ("SUBSCRIBE", "tx"), 1) if proto == 3 else ("b", ("PING",), 1),
            ("b", ("MULTI",), 1), ("b", ("PUBLISH", "tx", "in a transaction"), 1),
            ("b", ("EXEC",), 1),
            ("a", None, 1) if proto == 3 else ("b", ("PING",), 1),
        ]
        if proto == 3:
            # a RESP3 subscriber may publish itself: the push comes before
            # its PUBLISH's reply
            steps += [("a", ("PUBLISH", "tx", "to myself"), 2), ("a", ("SET", "k", "v"), 1),
                      ("a", ("GET", "k"), 1)]
        _play(a, b, steps, out)
        return out
    finally:
        a.close()
        b.close()


def _play(a, b, steps, out):
    for who, cmd, n in steps:
        c = a if who == "a" else b
        if cmd is not None:
            c.send_cmd(*cmd)
        for _ in range(n):
            parts = []
            c._raw_value(time.monotonic() + 10, parts)
            out.append((who, cmd, b"".join(parts)))


SHARD_STEPS = [
    ("a", ("SSUBSCRIBE", "s1", "s2", "s1"), 3),  # counts: shard channels only
    ("a", ("SUBSCRIBE", "c1"), 1), ("a", ("PSUBSCRIBE", "s*"), 1),  # channels and patterns
    ("b", ("SPUBLISH", "s1", "hello"), 1), ("a", None, 1),  # an smessage; patterns never
    ("b", ("PUBLISH", "s1", "plain"), 1), ("a", None, 1),  # a channel s1: the pattern's
    ("b", ("SPUBLISH", "c1", "x"), 1), ("b", ("SPUBLISH", "nobody", "x"), 1),
    ("b", ("PUBSUB", "SHARDCHANNELS", "s1"), 1), ("b", ("PUBSUB", "SHARDCHANNELS", "zz*"), 1),
    ("b", ("PUBSUB", "SHARDNUMSUB", "s1", "c1", "zz"), 1), ("b", ("PUBSUB", "SHARDNUMSUB"), 1),
    ("b", ("PUBSUB", "CHANNELS", "s*"), 1), ("b", ("PUBSUB", "NUMSUB", "s1"), 1),
    ("a", ("SUNSUBSCRIBE", "s1", "zz"), 2),
    ("b", ("SPUBLISH", "s1", "gone"), 1), ("b", ("SPUBLISH", "s2", "still"), 1), ("a", None, 1),
    ("a", ("UNSUBSCRIBE",), 1), ("a", ("PUNSUBSCRIBE",), 1),
    ("a", ("PING",), 1),  # RESP2: still in the subscribed context (s2)
    ("a", ("SUNSUBSCRIBE",), 1), ("a", ("SUNSUBSCRIBE",), 1),
    ("a", ("GET", "k"), 1),  # out of it
    ("b", ("SPUBLISH", "a"), 1), ("b", ("SSUBSCRIBE",), 1),
    ("b", ("PUBSUB", "SHARDCHANNELS", "a", "b"), 1),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_shard_channels_match_redis(anynode, redis_server, proto):  # noqa: F811
    """SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and PUBSUB SHARDCHANNELS /
    SHARDNUMSUB: a namespace apart from SUBSCRIBE's channels."""
    outs = []
    for port in (anynode.resp_port, redis_server):
        a, b = RawResp(port), RawResp(port)
        try:
            if proto == 3:
                a.cmd("HELLO", "3")
            out = []
            _play(a, b, SHARD_STEPS, out)
            outs.append(out)
        finally:
            a.close()
            b.close()
    assert len(outs[0]) == len(outs[1])
    for g, w in zip(*outs):
        assert g == w, (g, w)


@pytest.mark.parametrize("proto", [2, 3])
def test_pubsub_matches_redis(anynode, redis_server, proto):  # noqa: F811
    got = _choreography(anynode.resp_port, proto)
    want = _choreography(redis_server, proto)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w, (g, w)


def test_pubsub_help_names_what_exists(anynode):
    with RawResp(anynode.resp_port) as c:
        lines = c.cmd("PUBSUB", "HELP")
    assert lines[0].startswith("PUBSUB <subcommand>")
    assert [x.split()[0] for x in lines[1:] if not x.startswith(" ")] == \
        ["CHANNELS", "NUMPAT", "NUMSUB", "SHARDCHANNELS", "SHARDNUMSUB", "HELP"]


def _subscribe(node, *channels):
    c = RawResp(node.resp_port, timeout=20)
    for ch in channels:
        assert c.cmd("SUBSCRIBE", ch)[0] == b"subscribe"
    return c


def test_a_message_reaches_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    subs = [_subscribe(x, "news") for x in (leader, f1)]
    try:
        with RawResp(f2.resp_port) as p:
            p.cmd("PSUBSCRIBE", "n*")  # on the publishing node too, by pattern
            with RawResp(f2.resp_port) as pub:
                for i in range(20):
                    # the leader's receivers: the reply counts the node
                    # that applied it for the client
                    assert pub.cmd("PUBLISH", "news", f"m{i}") == 1
            for c in subs:
                got = [c.read() for _ in range(20)]
                assert got == [[b"message", b"news", f"m{i}".encode()] for i in range(20)]
            got = [p.read() for _ in range(20)]
            assert got == [[b"pmessage", b"n*", b"news", f"m{i}".encode()] for i in range(20)]
    finally:
        for c in subs:
            c.close()


def test_a_shard_message_reaches_every_node_and_no_channel_subscriber(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    subs = []
    try:
        for x in (leader, f1):
            c = RawResp(x.resp_port, timeout=20)
            assert c.cmd("SSUBSCRIBE", "orders")[0] == b"ssubscribe"
            subs.append(c)
        plain = _subscribe(f1, "orders")  # the same name, the other namespace
        subs.append(plain)
        with RawResp(f2.resp_port) as pub:
            for i in range(5):
                assert pub.cmd("SPUBLISH", "orders", f"o{i}") == 1
            # counted on the leader, which has no channel subscriber
            assert pub.cmd("PUBLISH", "orders", "plain") == 0
        for c in subs[:2]:
            assert [c.read() for _ in range(5)] == \
                [[b"smessage", b"orders", f"o{i}".encode()] for i in range(5)]
        assert plain.read() == [b"message", b"orders", b"plain"]  # none of the shard ones
    finally:
        for c in subs:
            c.close()


def test_a_subscriber_that_does_not_read_is_disconnected(make_node):
    n = make_node(persistence="none", extra_args=["--max-pending-output", "256k"]).start()
    slow = RawResp(n.resp_port)
    fast = RawResp(n.resp_port)
    try:
        slow.cmd("SUBSCRIBE", "flood")
        fast.cmd("SUBSCRIBE", "flood")
        payload = "x" * 16384
        with RawResp(n.resp_port) as pub:
            receivers = []
            for i in range(2000):  # at most 32 MB: past the limit and the socket buffers
                receivers.append(pub.cmd("PUBLISH", "flood", payload))
                fast.read()
                if receivers[-1] == 1:
                    break
            assert receivers[-1] == 1, "the subscriber that does not read is still served"
            assert pub.cmd("PUBLISH", "flood", "after") == 1  # only the reader is left
            assert pub.cmd("PING") == "PONG"
        assert fast.read()[2] == b"after"
        closed, _ = slow.wait_closed(10)
        assert closed, "a subscriber that never read was not disconnected"
        wait_until(lambda: (metric_value(metrics(n), "cairn_output_overflow_total") or 0) >= 1,
                   5, 0.1,
                   "the overflow to be counted")
    finally:
        slow.close()
        fast.close()


def test_messages_from_before_a_restart_are_not_delivered(make_node):
    n = make_node(extra_args=["--snapshot-threshold", "100000"]).start()
    with RawResp(n.resp_port) as pub:
        for i in range(50):
            assert pub.cmd("PUBLISH", "old", str(i)) == 0
    n.stop()
    n.start()
    with _subscribe(n, "old") as c, RawResp(n.resp_port) as pub:
        assert pub.cmd("PUBLISH", "old", "new") == 1
        assert c.read() == [b"message", b"old", b"new"]  # and none of the 50 before it


def test_publish_over_the_value_limit_is_refused(make_node):
    n = make_node(persistence="none", extra_args=["--max-value-bytes", "1024"]).start()
    with _subscribe(n, "ch") as sub, RawResp(n.resp_port) as c:
        assert c.cmd("PUBLISH", "ch", b"x" * 1025) == "ERR value too large (max 1024 bytes)"
        assert c.cmd("PUBLISH", b"c" * 1025, "m") == "ERR value too large (max 1024 bytes)"
        assert c.cmd("PUBLISH", "ch", b"x" * 1024) == 1
        assert sub.read() == [b"message", b"ch", b"x" * 1024]  # and nothing before it
