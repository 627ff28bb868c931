#!/usr/bin/env bash
# A normal (non-sanitizer) build of cairnd under Valgrind memcheck: a short
# workload over HTTP and RESP with users, tokens, rate limits and expiry,
# then SIGTERM. (Snapshots are left out: their fork() child under Valgrind
# fails for Valgrind's reasons; the ASan suite covers them.) Fails on any memcheck error or any
# definitely/indirectly lost byte (issue 7: "a normal run is clean under
# LeakSanitizer or Valgrind"; the ASan build covers LeakSanitizer).
#
# usage: scripts/valgrind.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -x "$build/cairnd" ] || { echo "valgrind.sh: $build/cairnd missing (scripts/build.sh $build)" >&2; exit 2; }
command -v valgrind >/dev/null || scripts/deps.sh test
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

read -r http resp peer < <(/usr/bin/python3 -c '
import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
alice=$("$build/cairnctl" hash-password alice-pw --iterations 10000)
root=$("$build/cairnctl" hash-password root-pw --iterations 10000)
printf 'alice:%s:rw:app/\nroot:%s:admin,rw:\n' "$alice" "$root" > "$work/users"

valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --child-silent-after-fork=yes \
  --suppressions=scripts/valgrind.supp \
  --log-file="$work/valgrind.log" \
  "$build/cairnd" --data-dir "$work/data" --listen-http "127.0.0.1:$http" \
  --listen-resp "127.0.0.1:$resp" --listen-peer "127.0.0.1:$peer" \
  --users-file "$work/users" --rate-limit 100000 2> "$work/cairnd.log" &
pid=$!

/usr/bin/python3 - "$http" "$resp" <<'PY'
import sys, time, requests, redis
http, resp = int(sys.argv[1]), int(sys.argv[2])
base = f"http://127.0.0.1:{http}"
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if requests.get(base + "/readyz", timeout=2).status_code == 200:
            break
    except requests.RequestException:
        pass
    time.sleep(0.2)
else:
    sys.exit("cairnd under valgrind did not become ready")
s = requests.Session()
s.auth = ("alice", "alice-pw")
for i in range(300):
    assert s.put(f"{base}/v1/key/app/{i}", data=b"v" * (i % 50), timeout=10).status_code == 201
    if i % 3 == 0:
        assert s.get(f"{base}/v1/key/app/{i}", timeout=10).status_code == 200
assert s.put(f"{base}/v1/key/app/ttl?ttl=1", data=b"x", timeout=10).status_code == 201
assert s.put(f"{base}/v1/key/other", data=b"x", timeout=10).status_code == 403
assert requests.get(f"{base}/v1/key/app/1", auth=("alice", "wrong"), timeout=10).status_code == 401
tok = s.post(f"{base}/v1/auth/token", timeout=10).json()["token"]
assert requests.get(f"{base}/v1/key/app/3", headers={"Authorization": "Bearer " + tok},
                    timeout=10).status_code == 200
assert requests.get(f"{base}/metrics", auth=("root", "root-pw"), timeout=10).status_code == 200
assert s.get(f"{base}/v1/keys?prefix=app/&limit=50", timeout=10).status_code == 200
r = redis.Redis(port=resp, username="alice", password="alice-pw", socket_timeout=10)
for i in range(200):
    r.set(f"app/r{i}", i)
assert r.incr("app/r1") == 2
p = r.pipeline(transaction=False)
for i in range(100):
    p.get(f"app/r{i}")
p.execute()
try:
    r.get("other")
except redis.exceptions.NoPermissionError:
    pass
# a Lua script that writes, reads back, and raises (the interpreter, the overlay)
assert r.eval("redis.call('set', KEYS[1], ARGV[1]); return redis.call('get', KEYS[1])",
              1, "app/lua", "v") == b"v"
assert r.eval("return cjson.encode({1, 2})", 0) == b"[1,2]"
try:
    r.eval("return redis.call('incr', 'app/lua')", 0)
except redis.exceptions.ResponseError:
    pass
r.close()
bad = redis.Redis(port=resp, username="alice", password="nope", socket_timeout=10)
try:
    bad.ping()
    sys.exit("a wrong password was accepted")
except redis.exceptions.ResponseError as e:
    assert "WRONGPASS" in str(e), e
time.sleep(1.5)  # active expiry runs
print("valgrind workload done")
PY
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" -ne 0 ] || grep -qE "definitely lost|indirectly lost|Invalid|uninitialised" "$work/valgrind.log"; then
  echo "valgrind.sh: memcheck found problems (exit $rc):" >&2
  cat "$work/valgrind.log" >&2
  tail -20 "$work/cairnd.log" >&2
  exit 1
fi
echo "valgrind.sh: clean (no memcheck errors, nothing definitely or indirectly lost)"
