"""redis-cli and redis-benchmark (Debian redis-tools) against cairn, unchanged:
scripts on stdin, --scan --pattern, -3 (RESP3), --pipe mass insertion,
-x, -r, --bigkeys, an interactive session on a pseudo-terminal, and a
redis-benchmark smoke run."""
import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from resp_helpers import anynode, client  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-tools not installed")


def cli(node, *args, stdin=None, timeout=30):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(node.resp_port), *args],
                       input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def test_script_on_stdin(anynode):
    script = b"SET a 1\nGET a\nINCR a\nGET nokey\nSET a\nMGET a nokey\nDEL a\nEXISTS a\n"
    rc, out, err = cli(anynode, stdin=script)
    assert rc == 0, err
    assert out == "OK\n1\n2\n\nERR wrong number of arguments for 'set' command\n\n2\n\n1\n0\n"


def test_arguments_and_quoting(anynode):
    assert cli(anynode, "SET", "k e y", "va\nlue")[1] == "OK\n"
    assert cli(anynode, "GET", "k e y")[1] == "va\nlue\n"
    assert cli(anynode, "--raw", "GET", "k e y")[1] == "va\nlue\n"
    assert cli(anynode, "--no-raw", "GET", "k e y")[1] == '"va\\nlue"\n'
    # quoted strings with escapes in a script (redis-cli parses them)
    rc, out, _ = cli(anynode, stdin=b'SET q "a\\x41b"\nGET q\nSTRLEN q\n')
    assert out == "OK\naAb\n3\n"


def test_scan_with_pattern(anynode):
    r = client(anynode)
    r.mset({f"user:{i}": "v" for i in range(150)})
    r.mset({f"order:{i}": "v" for i in range(50)})
    rc, out, err = cli(anynode, "--scan", "--pattern", "user:1*")
    assert rc == 0, err
    got = sorted(out.split())
    assert got == sorted(f"user:{i}" for i in range(150) if str(i).startswith("1"))
    rc, out, _ = cli(anynode, "--scan")
    assert len(out.split()) == 200
    rc, out, _ = cli(anynode, "KEYS", "order:4?")
    assert sorted(out.split()) == [f"order:{i}" for i in range(40, 50)]


def test_resp3_mode(anynode):
    rc, out, err = cli(anynode, "-3", "HELLO", "3")
    assert rc == 0, err
    assert "proto 3" in out and "server redis" in out
    rc, out, _ = cli(anynode, "-3", "CONFIG", "GET", "maxmemory")
    assert out == "maxmemory 0\n"
    cli(anynode, "-3", "SET", "x", "1")
    rc, out, _ = cli(anynode, "-3", stdin=b"GET x\nGET nokey\nMGET x nokey\nINFO keyspace\n")
    assert out.startswith("1\n\n1\n\n")
    assert "db0:keys=1" in out


def test_pipe_mass_insertion(anynode):
    lines = []
    for i in range(5000):
        k, v = f"mass:{i}".encode(), f"value-{i}".encode()
        lines.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    lines.append(b"INCRBY counter 5\r\n")  # inline commands mix in
    rc, out, err = cli(anynode, "--pipe", stdin=b"".join(lines), timeout=60)
    assert rc == 0, err + out
    assert "errors: 0, replies: 5001" in out
    r = client(anynode)
    assert r.get("mass:4999") == b"value-4999"
    assert r.get("counter") == b"5"


def test_stdin_argument_repeat_and_bigkeys(anynode):
    rc, out, _ = cli(anynode, "-x", "SET", "fromstdin", stdin=b"binary\x00data")
    assert out == "OK\n"
    assert client(anynode).get("fromstdin") == b"binary\x00data"
    rc, out, _ = cli(anynode, "-r", "3", "INCR", "rep")
    assert out == "1\n2\n3\n"
    client(anynode).set("largest", "x" * 5000)
    rc, out, err = cli(anynode, "--bigkeys")
    assert rc == 0, err
    assert "Biggest string found" in out and "largest" in out and "5000 bytes" in out


def test_errors_and_info(anynode):
    rc, out, _ = cli(anynode, "NOSUCHCMD", "x")
    # (redis-cli adds an empty line after an error, against Redis too)
    assert out == "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \n\n"
    rc, out, _ = cli(anynode, "INFO", "server")
    assert "redis_version:" in out and "cairn_version:" in out
    rc, out, _ = cli(anynode, "DBSIZE")
    assert out == "0\n"
    rc, out, _ = cli(anynode, "COMMAND", "COUNT")
    assert int(out) >= 55


def _interactive(port, lines, timeout=20):
    """Run redis-cli on a pseudo-terminal, type lines, return the screen text."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ["TERM"] = "xterm"  # hints need a terminal that has colours
        os.execvp("redis-cli", ["redis-cli", "-h", "127.0.0.1", "-p", str(port)])
    queries = 0
    out = b""
    deadline = time.monotonic() + timeout

    def pump(seconds):
        nonlocal out, queries
        end = min(time.monotonic() + seconds, deadline)
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            try:
                d = os.read(fd, 65536)
            except OSError:
                return
            if not d:
                return
            out += d
            # The line editor measures the terminal by asking for the cursor
            # position before and after moving far right: answer 200 columns.
            for _ in range(d.count(b"\x1b[6n")):
                queries += 1
                os.write(fd, b"\x1b[1;1R" if queries % 2 else b"\x1b[1;200R")

    try:
        pump(1.0)
        for line in lines:
            if line.endswith(" "):  # type it and stop: the hint shows
                os.write(fd, line.encode())
                pump(0.6)
                os.write(fd, b"\x15")  # ^U clears the line
                pump(0.2)
                continue
            os.write(fd, line.encode() + b"\r")
            pump(0.6)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return re.sub(rb"\x1b\[[0-9;]*[A-Za-z]", b"", out).decode("latin-1")


def test_interactive_session(anynode):
    """The interactive client starts (it fetches COMMAND DOCS first), shows
    Redis' argument hints, and runs commands with its formatting."""
    screen = _interactive(anynode.resp_port, ["SET ", "EXPIRE ", "SCAN ", "MGET ", "INCRBYFLOAT ",
                                              "SET greeting hello", "GET greeting", "GET nokey",
                                              "INCR n", "SET x", "HELLO 3", "MGET greeting nokey"])
    # the hints redis-cli 7.0 shows against redis-server, character for character
    for hint in ("SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds"
                 "|PXAT unix-time-milliseconds|KEEPTTL]", "EXPIRE key seconds [NX|XX|GT|LT]",
                 "SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]", "MGET key [key ...]",
                 "INCRBYFLOAT key increment"):
        assert hint in screen, hint
    assert '"hello"' in screen
    assert "(nil)" in screen
    assert "(integer) 1" in screen
    assert "(error) ERR wrong number of arguments for 'set' command" in screen
    assert "1# \"server\" => \"redis\"" in screen  # a RESP3 map
    assert '1) "hello"' in screen and "2) (nil)" in screen


@pytest.mark.timeout_s(180)
def test_redis_benchmark_smoke(anynode):
    if shutil.which("redis-benchmark") is None:
        pytest.skip("redis-benchmark not installed")
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(anynode.resp_port),
                        "-t", "set,get,incr,mset", "-n", "2000", "-q"],
                       capture_output=True, timeout=150)
    out = p.stdout.decode("latin-1") + p.stderr.decode("latin-1")
    assert p.returncode == 0, out
    for name in ("SET:", "GET:", "INCR:", "MSET (10 keys):"):
        assert name in out, out
    assert "ERR" not in out and "error" not in out.lower(), out
    assert re.search(r"GET: [\d.]+ requests per second", out), out
    # and pipelined
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(anynode.resp_port),
                        "-t", "set,get", "-n", "5000", "-P", "16", "-q"],
                       capture_output=True, timeout=150)
    out = p.stdout.decode("latin-1")
    assert p.returncode == 0 and "SET:" in out and "GET:" in out and "ERR" not in out, out
    assert client(anynode).dbsize() >= 1
