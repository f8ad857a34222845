#!/bin/sh
# bench/mcp/run.sh — MCP over Streamable HTTP under load, with the REST
# first page as the baseline measured in the same run (loopback, wrk,
# keep-alive).  Prints calls/s and p50/p99 for ping, tools/list and
# tools/call read_posts (limit 10), and read_posts / REST as a ratio.
#
#   bench/mcp/run.sh BUILD_DIR        (or: make bench-mcp)
#
# CONNS (64), SECS (10 per workload), THREADS (wrk threads, 2),
# SERVER_THREADS (botboard's pool, 2) override the defaults; CACHE_TTL_MS
# sets cache.ttl_ms (0: no post cache, for before/after comparisons);
# PAIRS (5) and PAIR_SECS (4) shape the paired REST/read_posts runs the
# ratio is taken from.
# Each line ends with the server's CPU time (user+system from /proc/PID/stat)
# per call: steadier than calls/s on a shared machine.
# Targets (issue 6): read_posts >= 24k calls/s and >= 0.7 x REST.
set -eu
build=${1:?usage: run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bb="$build/botboard"
conns=${CONNS:-64}
secs=${SECS:-10}
wthreads=${THREADS:-2}
sthreads=${SERVER_THREADS:-2}
for tool in wrk curl; do
    command -v $tool >/dev/null 2>&1 || { echo "bench-mcp: $tool is not installed" >&2; exit 1; }
done
[ -x "$bb" ] || { echo "bench-mcp: no botboard at $bb (build first)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bb-mcpbench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

write_config() {
    cat >"$tmp/botboard.yaml" <<YAML
server:
  listen: 127.0.0.1:$1
  threads: $sthreads
storage:
  backend: sqlite
  sqlite: { path: bench.db }
session:
  backend: memory
upstream:
  backend: local
logging: { level: warn, format: json }
bootstrap: { key_file: dev.key }
ratelimit:
  read: { per_minute: 100000000, burst: 100000000 }
  write: { per_minute: 100000000, burst: 100000000 }
YAML
    if [ -n "${CACHE_TTL_MS:-}" ]; then printf 'cache:\n  ttl_ms: %s\n' "$CACHE_TTL_MS" >>"$tmp/botboard.yaml"; fi
}

. "$here/../lib.sh"
port=$(bench_free_port)
write_config "$port"
"$bb" -c "$tmp/botboard.yaml" team create default >/dev/null 2>&1 || true
"$bb" serve -c "$tmp/botboard.yaml" >"$tmp/server.log" 2>&1 &
pid=$!
bench_wait_http "http://127.0.0.1:$port/healthz" "$tmp/server.log" bench-mcp
base="http://127.0.0.1:$port"
key=$("$bb" -c "$tmp/botboard.yaml" key create --team default 2>/dev/null)
auth="Bearer $key"

# 50 posts so a page of 10 is a full page.
for i in $(seq 1 50); do
    curl -fsS -o /dev/null -H "Authorization: $auth" -H "Content-Type: application/json" \
        -d "{\"author\":\"bench-$((i % 5))\",\"content\":\"benchmark post number $i with a little text\",\"tags\":[\"bench\",\"t$((i % 3))\"]}" \
        "$base/v1/teams/default/posts"
done

# Open an MCP session the way a client does.
sid=$(bench_mcp_session "$base" "$key")
[ -n "$sid" ] || { echo "bench-mcp: initialize gave no session id" >&2; exit 1; }

read_params='{"name":"read_posts","arguments":{"limit":10}}'
# Sanity: the call under load really returns a page of 10, not an error.
check=$(curl -fsS -H "Authorization: $auth" -H "Content-Type: application/json" \
    -H "Accept: application/json, text/event-stream" -H "Mcp-Session-Id: $sid" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":$read_params}" "$base/mcp")
case "$check" in
    *'"isError":true'*|*'"error"'*) echo "bench-mcp: read_posts fails: $check" >&2; exit 1 ;;
esac

export MCP_AUTH="$auth" MCP_SESSION="$sid"
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0; }
# run NAME [env...]: one wrk run; prints the line and remembers calls/s
run() {
    name=$1; shift
    t0=$(cpu_ticks)
    out=$(env "$@" timeout $((secs + 30)) wrk -t"$wthreads" -c"$conns" -d"${secs}s" -s "$here/mcp.lua" "$base/mcp" 2>&1) || true
    t1=$(cpu_ticks)
    line=$(printf '%s\n' "$out" | grep '^RESULT' || true)
    [ -n "$line" ] || { echo "bench-mcp: wrk failed for $name: $out" >&2; exit 1; }
    set -- $line
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" -v n="$7" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "-" }')
    printf '%-22s %9s calls/s   p50 %6s ms   p99 %6s ms   errors %s   non-2xx %s   cpu %s us/call\n' "$name" "$2" "$3" "$4" "$5" "$6" "$cpu"
    last_rps=$2
}

echo "botboard MCP benchmark: $conns connections, ${secs}s each, wrk threads $wthreads, server threads $sthreads, cache.ttl_ms ${CACHE_TTL_MS:-default}"
run "REST GET first page" REST_PATH="/v1/teams/default/posts?limit=10"
rest_rps=$last_rps
run "ping" MCP_METHOD=ping MCP_PARAMS='{}'
run "tools/list" MCP_METHOD=tools/list MCP_PARAMS='{}'
run "tools/call read_posts" MCP_METHOD=tools/call MCP_PARAMS="$read_params"
read_rps=$last_rps
ratio=$(awk -v a="$read_rps" -v b="$rest_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "read_posts / REST first page, one pass: $ratio"

# The ratio from one REST run and one read_posts run 30 s apart drifts
# with the machine (REST moved 35k-46k between passes on an idle 2-core
# VM, and one pass gave 0.67 and another 1.14 on the same build).  So:
# PAIRS back-to-back pairs of shorter runs, and the median of their ratios
# is the figure.  Single pairs still spread 0.65-1.0; five pairs of 4 s
# hold the median steadier than three of 5 s in the same time.
pairs=${PAIRS:-5}
psecs=${PAIR_SECS:-4}
ratios=""
secs_main=$secs
secs=$psecs
for i in $(seq 1 "$pairs"); do
    run "  pair $i: REST" REST_PATH="/v1/teams/default/posts?limit=10"
    r_rest=$last_rps
    run "  pair $i: read_posts" MCP_METHOD=tools/call MCP_PARAMS="$read_params"
    ratios="$ratios $(awk -v a="$last_rps" -v b="$r_rest" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
done
secs=$secs_main
median=$(printf '%s\n' $ratios | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m }')
echo "read_posts / REST first page: $median, median of $pairs back-to-back pairs ($ratios ) (target >= 0.70); read_posts $read_rps calls/s (target >= 24000)"
rss=$(awk '/VmHWM/ { print $2 / 1024 " MiB" }' /proc/$pid/status 2>/dev/null || echo "?")
echo "server peak RSS: $rss"
