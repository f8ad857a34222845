#!/bin/sh
# bench/gateway/run.sh — read_posts through an MCP gateway (upstream_http)
# versus directly on the origin's MCP, with the gateway's cache warm
# (fallback_cache.fresh_ms) and with it disabled.  Loopback only, bounded:
# three wrk runs of BENCH_SECS (default 10) seconds each.
#
#   make bench-gateway            (from the build dir)
#   BENCH_SECS=5 BENCH_CONNS=32 bench/gateway/run.sh BUILD_DIR
#
# Prints one line per target and the ratios.  Absolute numbers move from run
# to run on a shared machine; compare the ratios of one run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-${BB_BUILDDIR:-.}}" && pwd)
bb="$build/botboard"
secs=${BENCH_SECS:-10}
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-2}
[ -x "$bb" ] || { echo "bench-gateway: no botboard binary in $build" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench-gateway: wrk not installed (apt-get install wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench-gateway: curl not installed" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bb-bench-gw.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

. "$here/../lib.sh"

# write_config NAME PORT UPSTREAM_YAML
write_config() {
    cat > "$tmp/$1.yaml" <<YAML
server:
  listen: 127.0.0.1:$2
  threads: 4
storage:
  backend: sqlite
  auto_migrate: true
  sqlite:
    path: $tmp/$1.db
session:
  backend: memory
$3
bootstrap:
  key_file: $tmp/$1.key
logging:
  level: error
ratelimit:
  read: { per_minute: 100000000, burst: 10000000 }
  write: { per_minute: 100000000, burst: 10000000 }
  delete: { per_minute: 100000000, burst: 10000000 }
YAML
}

# start NAME PORT: serve and wait (bounded) for /healthz
start() {
    "$bb" serve -c "$tmp/$1.yaml" > "$tmp/$1.log" 2>&1 &
    pids="$pids $!"
    bench_wait_http "http://127.0.0.1:$2/healthz" "$tmp/$1.log" "bench-gateway: $1"
}

make_key() {   # make_key NAME -> prints a key for team default
    "$bb" team create default -c "$tmp/$1.yaml" >/dev/null 2>&1 || true
    "$bb" key create --team default -c "$tmp/$1.yaml" 2>/dev/null | tail -1
}

BODY='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_posts","arguments":{"limit":10}}}'

measure() {   # measure LABEL PORT KEY -> prints "LABEL rps p50 p99 errors"
    sid=$(bench_mcp_session "http://127.0.0.1:$2" "$3")
    [ -n "$sid" ] || { echo "bench-gateway: no MCP session on $1" >&2; exit 1; }
    # One warm-up call (fills the gateway cache, opens upstream connections);
    # it must be a real page, or the figures would measure errors.
    curl -fs -o "$tmp/warmup.json" "http://127.0.0.1:$2/mcp" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
        -H 'MCP-Protocol-Version: 2025-11-25' -d "$BODY"
    if grep -q '"isError":true' "$tmp/warmup.json" || ! grep -q '"postId"' "$tmp/warmup.json"; then
        echo "bench-gateway: read_posts on $1 did not return posts: $(head -c 300 "$tmp/warmup.json")" >&2
        exit 1
    fi
    out=$(BENCH_KEY="$3" BENCH_SID="$sid" BENCH_BODY="$BODY" \
          wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 5s -s "$here/mcp-call.lua" "http://127.0.0.1:$2/mcp" 2>&1)
    line=$(echo "$out" | grep '^RESULT' || true)
    [ -n "$line" ] || { echo "bench-gateway: wrk failed on $1: $out" >&2; exit 1; }
    echo "$1 $line"
}

# Origin: MCP + REST over SQLite, with 50 posts.
op=$(bench_free_port)
write_config origin "$op" "upstream:
  backend: local"
start origin "$op"
okey=$(make_key origin)
i=0
while [ $i -lt 50 ]; do
    curl -fs -o /dev/null "http://127.0.0.1:$op/v1/teams/default/posts" -H "Authorization: Bearer $okey" \
        -H 'Content-Type: application/json' -d "{\"author\":\"bench\",\"content\":\"post $i\",\"tags\":[\"b\"]}"
    i=$((i + 1))
done

# Gateways: MCP over upstream_http pointing straight at the origin.
gw_upstream() {   # gw_upstream FRESH_MS MAX_ENTRIES
    printf 'upstream:\n  backend: http\n  http:\n    base_url: http://127.0.0.1:%s/v1\n    api_key: %s\n    fallback_cache:\n      fresh_ms: %s\n      max_entries: %s\n' \
        "$op" "$okey" "$1" "$2"
}
wp=$(bench_free_port)
write_config gw_warm "$wp" "$(gw_upstream 60000 1000)"
start gw_warm "$wp"
wkey=$(make_key gw_warm)
np=$(bench_free_port)
write_config gw_nocache "$np" "$(gw_upstream 0 0)"
start gw_nocache "$np"
nkey=$(make_key gw_nocache)

echo "read_posts (limit 10, 50 posts), wrk -t$threads -c$conns -d${secs}s, loopback, one machine"
direct=$(measure origin-direct "$op" "$okey")
warm=$(measure gateway-warm-cache "$wp" "$wkey")
nocache=$(measure gateway-no-cache "$np" "$nkey")
printf '%s\n%s\n%s\n' "$direct" "$warm" "$nocache"
rps() { echo "$1" | sed -n 's/.*rps=\([0-9]*\).*/\1/p'; }
d=$(rps "$direct"); w=$(rps "$warm"); n=$(rps "$nocache")
awk -v d="$d" -v w="$w" -v n="$n" 'BEGIN {
    printf "ratio gateway-warm-cache / origin-direct: %.2f\n", w / d;
    printf "ratio gateway-no-cache   / origin-direct: %.2f\n", n / d }'
