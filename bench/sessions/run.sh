#!/bin/sh
# bench/sessions/run.sh — 100,000 sessions created then looked up at random
# from 2 threads, for each backend: ops/s, p50/p99, RSS.  Redis runs as a
# throwaway redis-server on a free loopback port (nothing persisted).
#
#   bench/sessions/run.sh BENCH_BINARY      (or: make bench-sessions)
#
# SESSIONS, LOOKUPS, THREADS override the sizes.
set -eu
bin=${1:?usage: run.sh path/to/session_bench}
sessions=${SESSIONS:-100000}
lookups=${LOOKUPS:-200000}
threads=${THREADS:-2}
args="--sessions $sessions --lookups $lookups --threads $threads"

echo "== memory backend"
timeout 300 "$bin" --backend memory $args

if ! command -v redis-server >/dev/null 2>&1 || [ ! -e "$(dirname "$bin")/../plugins/session_redis/session_redis.la" ]; then
    echo "== redis backend skipped (no redis-server, or built --without-redis)"
    exit 0
fi
tmp=$(mktemp -d /tmp/bb-sessbench-redis.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
for attempt in 1 2 3 4 5; do
    port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
        --daemonize no >"$tmp/redis.log" 2>&1 &
    pid=$!
    up=0
    for i in $(seq 1 100); do
        if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then up=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ "$up" = 1 ] && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
done
[ -n "$pid" ] || { echo "redis-server would not start"; cat "$tmp/redis.log"; exit 1; }
echo "== redis backend (redis-server on 127.0.0.1:$port)"
timeout 300 "$bin" --backend redis --url "redis://127.0.0.1:$port/0" $args
echo "redis   server $(redis-cli -h 127.0.0.1 -p "$port" info memory | grep '^used_memory_human' | tr -d '\r') keys=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)"
